package api

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/limiquantix/limiquantix/store"
)

func TestTicketStore(t *testing.T) {
	who := store.Token{ID: "t1", Name: "admin"}
	tests := []struct {
		name   string
		redeem func(s *ticketStore, c *fakeClock, plain string) (ticket, error)
		want   error
	}{
		{"fresh", func(s *ticketStore, c *fakeClock, plain string) (ticket, error) {
			return s.redeem(plain)
		}, nil},
		{"missing", func(s *ticketStore, c *fakeClock, plain string) (ticket, error) {
			return s.redeem("")
		}, errTicketMissing},
		{"unknown", func(s *ticketStore, c *fakeClock, plain string) (ticket, error) {
			return s.redeem(plain + "x")
		}, errTicketUnknown},
		{"expired", func(s *ticketStore, c *fakeClock, plain string) (ticket, error) {
			c.advance(ticketTTL)
			return s.redeem(plain)
		}, errTicketExpired},
		{"reused", func(s *ticketStore, c *fakeClock, plain string) (ticket, error) {
			if _, err := s.redeem(plain); err != nil {
				return ticket{}, err
			}
			return s.redeem(plain)
		}, errTicketUnknown},
		{"expired, then retried", func(s *ticketStore, c *fakeClock, plain string) (ticket, error) {
			c.advance(time.Hour)
			s.redeem(plain)
			c.advance(-time.Hour)
			return s.redeem(plain)
		}, errTicketUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeClock{now: time.Unix(1_700_000_000, 0)}
			s := newTicketStore(c, ticketTTL)
			plain, expires, err := s.issue("web", "u-web", who)
			if err != nil {
				t.Fatal(err)
			}
			if !expires.Equal(c.Now().Add(ticketTTL)) {
				t.Errorf("expires %v", expires)
			}
			got, err := tt.redeem(s, c, plain)
			if !errors.Is(err, tt.want) {
				t.Fatalf("redeem: %v, want %v", err, tt.want)
			}
			if err == nil && (got.uuid != "u-web" || got.vm != "web" || got.token.ID != "t1") {
				t.Errorf("ticket %+v", got)
			}
			if n := s.outstanding(); n != 0 && tt.name != "missing" && tt.name != "unknown" {
				t.Errorf("%d tickets left after use", n)
			}
		})
	}
}

func TestTicketStoreBound(t *testing.T) {
	c := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := newTicketStore(c, ticketTTL)
	for range maxLiveTickets {
		if _, _, err := s.issue("web", "u-web", store.Token{}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := s.issue("web", "u-web", store.Token{})
	if status, code := classify(err); status != http.StatusServiceUnavailable || code != CodeUnavailable {
		t.Errorf("issue over the bound: %v (%d %s), want 503 unavailable", err, status, code)
	}
	c.advance(ticketTTL) // all expired: the next issue sweeps them
	if _, _, err := s.issue("web", "u-web", store.Token{}); err != nil {
		t.Fatalf("issue after expiry: %v", err)
	}
	if n := s.outstanding(); n != 1 {
		t.Errorf("%d tickets after the sweep, want 1", n)
	}
}
