package qmp

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/digitalocean/go-qemu/qmp"
)

// EventDisconnected is the name of the synthetic event every subscriber
// receives, just before its channel is closed, when the connection is lost.
const EventDisconnected = "DISCONNECTED"

// Subscribe returns a channel receiving every event from now on, and a
// func that unsubscribes and closes the channel. Delivery never blocks the
// monitor: when the channel's buffer (at least 1) is full, the OLDEST
// buffered event is dropped so the newest state always arrives; drops are
// counted by Dropped. Event.Data maps are shared between subscribers and
// must not be modified.
func (m *Monitor) Subscribe(buffer int) (<-chan qmp.Event, func()) {
	return m.events.subscribe(buffer)
}

// Events implements qmp.Monitor: Subscribe with DefaultEventBuffer,
// unsubscribed (and the channel closed) when ctx ends.
func (m *Monitor) Events(ctx context.Context) (<-chan qmp.Event, error) {
	select {
	case <-m.done:
		return nil, fmt.Errorf("qmp: events: %w", m.disconnectErr())
	default:
	}
	ch, cancel := m.Subscribe(DefaultEventBuffer)
	context.AfterFunc(ctx, cancel)
	return ch, nil
}

// Dropped is the number of events discarded because a subscriber's buffer
// was full, summed over all subscribers.
func (m *Monitor) Dropped() uint64 { return m.events.dropped.Load() }

// bus fans events out to subscribers without ever blocking the publisher.
type bus struct {
	mu      sync.Mutex
	subs    map[chan qmp.Event]struct{}
	closed  bool
	dropped atomic.Uint64
}

func (b *bus) subscribe(buffer int) (<-chan qmp.Event, func()) {
	ch := make(chan qmp.Event, max(buffer, 1))
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		ch <- qmp.Event{Event: EventDisconnected}
		close(ch)
		return ch, func() {}
	}
	if b.subs == nil {
		b.subs = make(map[chan qmp.Event]struct{})
	}
	b.subs[ch] = struct{}{}
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
	}
}

func (b *bus) publish(ev qmp.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		b.offer(ch, ev)
	}
}

// offer delivers ev, evicting the oldest buffered events while ch is full.
// Only the publisher sends, and it holds b.mu, so this terminates.
func (b *bus) offer(ch chan qmp.Event, ev qmp.Event) {
	for {
		select {
		case ch <- ev:
			return
		default:
		}
		select {
		case <-ch:
			b.dropped.Add(1)
		default:
		}
	}
}

// close sends EventDisconnected to every subscriber and closes them.
func (b *bus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		b.offer(ch, qmp.Event{Event: EventDisconnected})
		close(ch)
	}
	b.subs = nil
}
