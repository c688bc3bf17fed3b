package vmm

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/limiquantix/limiquantix/store"
)

// Event types.
const (
	EventCreated  = "vm.created"
	EventDeleted  = "vm.deleted"
	EventUpdated  = "vm.updated"
	EventState    = "vm.state"    // message: the new state
	EventError    = "vm.error"    // an operation failed
	EventCrashed  = "vm.crashed"  // qemu died without being asked to
	EventRestart  = "vm.restart"  // the restart policy started it again
	EventReset    = "vm.reset"    // the guest or a user reset the machine
	EventShutdown = "vm.shutdown" // a graceful shutdown was requested (message: how)
)

// Bus records events in the database and fans them out to live subscribers. Publishing
// never blocks: a subscriber that does not keep up loses its oldest events and can catch
// up from the database by id.
type Bus struct {
	db  *store.DB
	log *slog.Logger

	mu   sync.Mutex
	subs map[chan store.Event]struct{}
}

// NewBus returns a bus that records into db.
func NewBus(db *store.DB, log *slog.Logger) *Bus {
	return &Bus{db: db, log: log, subs: map[chan store.Event]struct{}{}}
}

// Publish records an event and delivers it to subscribers.
func (b *Bus) Publish(typ, vm, message string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := b.db.AddEvent(ctx, store.Event{Type: typ, VM: vm, Message: message})
	if err != nil {
		b.log.Error("record event", "type", typ, "vm", vm, "err", err)
	}
	b.log.Info("event", "type", typ, "vm", vm, "message", message)
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- e:
		default:
			select { // full: drop the oldest, keep the newest
			case <-ch:
			default:
			}
			select {
			case ch <- e:
			default:
			}
		}
	}
}

// Subscribe returns a channel of new events and a function that ends the subscription.
func (b *Bus) Subscribe(buffer int) (<-chan store.Event, func()) {
	ch := make(chan store.Event, buffer)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, ch)
			b.mu.Unlock()
		})
	}
}
