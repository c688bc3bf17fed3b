package api

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/limiquantix/limiquantix/store"
)

// Console tickets: browsers cannot set an Authorization header on a WebSocket, so a client
// with a bearer token asks for a ticket and puts it in the WebSocket's URL. A ticket is
// random, lives in memory only, expires after ticketTTL, opens one console of one VM (by
// uuid, so a VM deleted and re-created under the same name does not inherit it) and is
// consumed by its first use, whatever the outcome.

// Ticket limits.
const (
	ticketTTL        = 30 * time.Second
	maxLiveTickets   = 4096 // outstanding tickets; a client cannot grow the map without bound
	ticketRandomSize = 32
)

// Ticket errors; all mean 401.
var (
	errTicketMissing = errors.New("console ticket missing: POST /api/v1/vms/{name}/console-ticket first, then pass ?ticket=")
	errTicketUnknown = errors.New("console ticket unknown or already used")
	errTicketExpired = errors.New("console ticket expired")
)

// clock tells the time; tests use a fake one.
type clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// ticket is what a ticket grants, and to whom.
type ticket struct {
	vm      string // name, for logs
	uuid    string // the VM it opens
	token   store.Token
	expires time.Time
}

// ticketStore holds the outstanding tickets.
type ticketStore struct {
	clock clock
	ttl   time.Duration

	mu      sync.Mutex
	tickets map[string]ticket
}

func newTicketStore(c clock, ttl time.Duration) *ticketStore {
	return &ticketStore{clock: c, ttl: ttl, tickets: map[string]ticket{}}
}

// issue makes a ticket for one console of the VM with this uuid.
func (s *ticketStore) issue(vm, uuid string, who store.Token) (string, time.Time, error) {
	b := make([]byte, ticketRandomSize)
	if _, err := rand.Read(b); err != nil {
		return "", time.Time{}, fmt.Errorf("api: console ticket: %w", err)
	}
	plain := base64.RawURLEncoding.EncodeToString(b)
	now := s.clock.Now()
	expires := now.Add(s.ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tickets) >= maxLiveTickets {
		for k, t := range s.tickets {
			if !now.Before(t.expires) {
				delete(s.tickets, k)
			}
		}
		if len(s.tickets) >= maxLiveTickets {
			return "", time.Time{}, errorf(http.StatusServiceUnavailable, CodeUnavailable, "too many outstanding console tickets (%d); retry in %s", len(s.tickets), s.ttl)
		}
	}
	s.tickets[plain] = ticket{vm: vm, uuid: uuid, token: who, expires: expires}
	return plain, expires, nil
}

// redeem consumes a ticket: the first use removes it, valid or not.
func (s *ticketStore) redeem(plain string) (ticket, error) {
	if plain == "" {
		return ticket{}, errTicketMissing
	}
	s.mu.Lock()
	t, ok := s.tickets[plain]
	delete(s.tickets, plain)
	s.mu.Unlock()
	switch {
	case !ok:
		return ticket{}, errTicketUnknown
	case !s.clock.Now().Before(t.expires):
		return ticket{}, errTicketExpired
	}
	return t, nil
}

// outstanding is how many tickets are held, expired ones included.
func (s *ticketStore) outstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tickets)
}
