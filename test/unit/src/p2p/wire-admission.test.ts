// Admission of wire sockets before they prove membership, on a manual clock with stand-in sockets.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { WireAdmission } from '../../../../src/p2p/wire-admission.ts';
import { addressKey, AddressBans, BAN_MS, MAX_BANNED_ADDRESSES } from '../../../../src/p2p/wire-bans.ts';

class StandIn extends EventEmitter {
  destroyed = false;
  constructor(readonly remoteAddress: string) {
    super();
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }
}

function setup(options = { maxHandshaking: 4, maxPerAddress: 2, handshakeTimeoutMs: 5_000 }) {
  const clock = new ManualClock(1_000);
  const bans = new AddressBans({ clock });
  return { clock, bans, admission: new WireAdmission({ clock, bans }, options) };
}

describe('WireAdmission', () => {
  it('closes a socket still in handshake at the deadline, and not one that settled', () => {
    const { clock, admission } = setup();
    const idle = new StandIn('10.0.0.1');
    const member = new StandIn('10.0.0.2');
    expect(admission.admit(idle)).toBe('admitted');
    expect(admission.admit(member)).toBe('admitted');
    admission.settled(member);
    clock.advance(4_999);
    expect(idle.destroyed).toBe(false);
    clock.advance(1);
    expect(idle.destroyed).toBe(true);
    expect(member.destroyed).toBe(false);
    expect(admission.handshaking).toBe(0);
  });

  it('refuses a socket beyond the per-address cap, and takes one again when a slot frees', () => {
    const { admission } = setup();
    const a = [new StandIn('10.0.0.1'), new StandIn('::ffff:10.0.0.1'), new StandIn('10.0.0.1')];
    expect(admission.admit(a[0]!)).toBe('admitted');
    expect(admission.admit(a[1]!)).toBe('admitted');
    expect(admission.admit(a[2]!)).toBe('address busy');
    expect(admission.admit(new StandIn('10.0.0.9'))).toBe('admitted');
    a[0]!.destroy();
    expect(admission.admit(a[2]!)).toBe('admitted');
  });

  it('when full, the oldest socket of the busiest address makes room: a stranger holding many cannot evict a member', () => {
    const { admission } = setup();
    const member = new StandIn('10.0.0.5');
    expect(admission.admit(member)).toBe('admitted');
    const stranger = ['10.0.0.1', '10.0.0.1', '10.0.0.2'].map((a) => new StandIn(a));
    for (const s of stranger) expect(admission.admit(s)).toBe('admitted');
    expect(admission.admit(new StandIn('10.0.0.2'))).toBe('admitted');
    expect(member.destroyed).toBe(false);
    expect(stranger[0]!.destroyed).toBe(true);
    expect(stranger[1]!.destroyed).toBe(false);
  });

  it('when full with one socket per address, the oldest makes room', () => {
    const { admission } = setup();
    const strangers = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'].map((a) => new StandIn(a));
    for (const s of strangers) expect(admission.admit(s)).toBe('admitted');
    const member = new StandIn('10.0.0.5');
    expect(admission.admit(member)).toBe('admitted');
    expect(strangers[0]!.destroyed).toBe(true);
    expect(strangers.slice(1).every((s) => !s.destroyed)).toBe(true);
    expect(admission.handshaking).toBe(4);
    expect(admission.evicted).toBe(1);
  });

  it('refuses a banned address until its ban ends', () => {
    const { clock, bans, admission } = setup();
    bans.ban('10.0.0.7');
    expect(admission.admit(new StandIn('::ffff:10.0.0.7'))).toBe('banned');
    clock.advance(BAN_MS);
    expect(admission.admit(new StandIn('10.0.0.7'))).toBe('admitted');
  });

  it('close() closes every socket still in handshake', () => {
    const { admission } = setup();
    const s = new StandIn('10.0.0.1');
    admission.admit(s);
    admission.close();
    expect(s.destroyed).toBe(true);
    expect(admission.handshaking).toBe(0);
  });
});

describe('AddressBans', () => {
  it('keys IPv4-mapped IPv6 as IPv4 and forgets a ban when it ends', () => {
    const clock = new ManualClock(0);
    const bans = new AddressBans({ clock }, { banMs: 100 });
    expect(addressKey('::FFFF:192.0.2.1')).toBe('192.0.2.1');
    bans.ban('::ffff:192.0.2.1');
    expect(bans.isBanned('192.0.2.1')).toBe(true);
    clock.advance(100);
    expect(bans.isBanned('192.0.2.1')).toBe(false);
    expect(bans.size).toBe(0);
  });

  it('holds at most MAX_BANNED_ADDRESSES, dropping the ban that ends soonest', () => {
    const clock = new ManualClock(0);
    const bans = new AddressBans({ clock });
    for (let i = 0; i <= MAX_BANNED_ADDRESSES; i++) {
      bans.ban(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      clock.advance(1);
    }
    expect(bans.size).toBe(MAX_BANNED_ADDRESSES);
    expect(bans.isBanned('10.0.0.0')).toBe(false);
    expect(bans.isBanned('10.0.0.1')).toBe(true);
  });
});
