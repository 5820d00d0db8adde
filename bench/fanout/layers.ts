// How the fan-out bed's image is split over its layers. The image's builder (image.ts) and the
// simulation's model of the bed (bench/sim, `bench sim --layers bed`) both need it; it stands alone
// so that the simulation does not load the image generators (test helpers) to learn four numbers.

/** How the image's size is split over its layers (largest first, as real images tend to be). */
export const LAYER_SHARES = [0.4, 0.3, 0.2, 0.1] as const;
