package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/limiquantix/limiquantix/store"
	"github.com/limiquantix/limiquantix/vmm"
)

// sseEvent is one server-sent event as a client parses it.
type sseEvent struct {
	id, event, data string
}

// sseStream is an open GET /api/v1/events with Accept: text/event-stream.
type sseStream struct {
	events   chan sseEvent
	comments chan string
	cancel   context.CancelFunc
	done     chan struct{} // closed when the response body ends
}

func (f *rtFixture) openStream(t testing.TB, query, lastID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", f.ts.URL+"/api/v1/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+f.token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("event stream: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{events: make(chan sseEvent, 1024), comments: make(chan string, 16), cancel: cancel, done: make(chan struct{})}
	t.Cleanup(cancel)
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch k, v, _ := strings.Cut(line, ": "); {
			case line == "":
				if e != (sseEvent{}) {
					s.events <- e
				}
				e = sseEvent{}
			case strings.HasPrefix(line, ":"):
				select {
				case s.comments <- strings.TrimSpace(line[1:]):
				default:
				}
			case k == "id":
				e.id = v
			case k == "event":
				e.event = v
			case k == "data":
				e.data = v
			}
		}
	}()
	return s
}

// next returns the next event, failing after a while.
func (s *sseStream) next(t testing.TB) sseEvent {
	t.Helper()
	select {
	case e := <-s.events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
		return sseEvent{}
	}
}

// ids reads n events and checks each one's fields agree; it returns their ids.
func (s *sseStream) ids(t testing.TB, n int) []int64 {
	t.Helper()
	var out []int64
	for range n {
		e := s.next(t)
		var ev Event
		if err := json.Unmarshal([]byte(e.data), &ev); err != nil {
			t.Fatalf("data %q: %v", e.data, err)
		}
		if e.id != strconv.FormatInt(ev.ID, 10) || e.event != ev.Type || ev.Time.IsZero() {
			t.Errorf("event id %q / type %q do not match data %s", e.id, e.event, e.data)
		}
		out = append(out, ev.ID)
	}
	return out
}

// quiet checks that no further event arrives for a moment.
func (s *sseStream) quiet(t testing.TB) {
	t.Helper()
	select {
	case e := <-s.events:
		t.Errorf("unexpected extra event %+v", e)
	case <-time.After(150 * time.Millisecond):
	}
}

func span(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestEventStreamResume(t *testing.T) {
	tests := []struct {
		name, query, lastID string
		backlog             []int64
	}{
		{"Last-Event-ID", "", "1", []int64{2, 3}},
		{"query after", "?after=2", "", []int64{3}},
		{"after=0: all of it", "?after=0", "", []int64{1, 2, 3}},
		{"Last-Event-ID wins over after", "?after=0", "2", []int64{3}},
		{"caught up", "", "3", nil},
		{"no cursor: live only", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRTFixture(t)
			bus := f.vms.Bus()
			for i := range 3 {
				bus.Publish(vmm.EventCreated, fmt.Sprintf("vm%d", i+1), "")
			}
			s := f.openStream(t, tt.query, tt.lastID)
			if got := s.ids(t, len(tt.backlog)); !reflect.DeepEqual(got, tt.backlog) {
				t.Errorf("backlog ids %v, want %v", got, tt.backlog)
			}
			time.Sleep(50 * time.Millisecond) // let the stream reach its live loop (not needed for correctness)
			bus.Publish(vmm.EventState, "vm1", "running")
			bus.Publish(vmm.EventDeleted, "vm2", "")
			if got := s.ids(t, 2); !reflect.DeepEqual(got, []int64{4, 5}) {
				t.Errorf("live ids %v, want [4 5]", got)
			}
			s.quiet(t)
		})
	}
}

// TestEventStreamNoGaps publishes from several goroutines while clients connect: every
// client sees every event after its cursor exactly once, in order.
func TestEventStreamNoGaps(t *testing.T) {
	f := newRTFixture(t)
	bus := f.vms.Bus()
	for range 10 {
		bus.Publish(vmm.EventUpdated, "before", "")
	}
	const publishers, each = 4, 50
	var wg sync.WaitGroup
	start := make(chan struct{})
	for p := range publishers {
		wg.Go(func() {
			<-start
			for i := range each {
				bus.Publish(vmm.EventUpdated, fmt.Sprintf("p%d", p), strconv.Itoa(i))
			}
		})
	}
	close(start)
	var streams []*sseStream
	for i := range 5 {
		streams = append(streams, f.openStream(t, "", strconv.Itoa(i*2)))
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	total := int64(10 + publishers*each)
	for i, s := range streams {
		from := int64(i*2 + 1)
		if got := s.ids(t, int(total-from+1)); !reflect.DeepEqual(got, span(from, total)) {
			t.Errorf("stream %d: ids %v, want %d..%d each once", i, got, from, total)
		}
		s.quiet(t)
	}
}

func TestEventStreamHeartbeat(t *testing.T) {
	f := newRTFixture(t)
	f.srv.rt.heartbeat = 20 * time.Millisecond
	s := f.openStream(t, "", "")
	select {
	case c := <-s.comments:
		if c != "heartbeat" {
			t.Errorf("comment %q", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat")
	}
}

func TestEventStreamRequests(t *testing.T) {
	f := newRTFixture(t)
	f.vms.Bus().Publish(vmm.EventCreated, "web", "")
	tests := []struct {
		name   string
		header http.Header
		query  string
		status int
		ctype  string
	}{
		{"JSON list by default", nil, "", http.StatusOK, "application/json"},
		{"JSON list for application/json", http.Header{"Accept": {"application/json"}}, "", http.StatusOK, "application/json"},
		{"bad Last-Event-ID", http.Header{"Accept": {"text/event-stream"}, "Last-Event-Id": {"x"}}, "", http.StatusBadRequest, "application/json"},
		{"negative after", http.Header{"Accept": {"text/event-stream"}}, "?after=-1", http.StatusBadRequest, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.do(t, "GET", "/api/v1/events"+tt.query, tt.header)
			defer resp.Body.Close()
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, tt.ctype)
			}
			if tt.status == http.StatusOK {
				var evs []Event
				if err := json.NewDecoder(resp.Body).Decode(&evs); err != nil || len(evs) != 1 {
					t.Errorf("events %v, %v", evs, err)
				}
			}
		})
	}
}

func TestWantsEventStream(t *testing.T) {
	tests := []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{"application/json"}, false},
		{[]string{"text/event-stream"}, true},
		{[]string{"text/html, Text/Event-Stream;q=0.9"}, true},
		{[]string{"application/json", "text/event-stream"}, true},
		{[]string{"text/event-streams"}, false},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header["Accept"] = tt.accept
		if got := wantsEventStream(r); got != tt.want {
			t.Errorf("Accept %q: %v, want %v", tt.accept, got, tt.want)
		}
	}
}

// TestEventStreamDeliver drives the ordering logic with live deliveries in every bad order
// the bus can produce.
func TestEventStreamDeliver(t *testing.T) {
	f := newRTFixture(t)
	ctx := context.Background()
	for range 6 {
		if _, err := f.db.AddEvent(ctx, store.Event{Type: vmm.EventUpdated, VM: "web"}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		after int64
		live  []int64 // ids the bus delivers, in this order
		want  []int64 // ids written
	}{
		{"in order", 0, []int64{1, 2, 3}, []int64{1, 2, 3}},
		{"out of order", 0, []int64{2, 1, 3}, []int64{1, 2, 3}},
		{"dropped by the bus", 1, []int64{2, 5}, []int64{2, 3, 4, 5}},
		{"duplicates and old ones", 3, []int64{1, 3, 4, 4, 2}, []int64{4}},
		{"no cursor starts at the first", -1, []int64{3, 5, 4}, []int64{3, 4, 5}},
		{"unrecorded event", 6, []int64{0}, []int64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &idRecorder{}
			es := &eventStream{w: w, db: f.db, last: tt.after}
			for _, id := range tt.live {
				if err := es.deliver(ctx, store.Event{ID: id, Type: vmm.EventUpdated, Time: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(w.ids, tt.want) {
				t.Errorf("wrote ids %v, want %v", w.ids, tt.want)
			}
		})
	}
}

// idRecorder collects the ids of the events written to it (0 for one without an id line).
type idRecorder struct{ ids []int64 }

func (r *idRecorder) Write(p []byte) (int, error) {
	s := string(p)
	id := int64(0)
	if rest, ok := strings.CutPrefix(s, "id: "); ok {
		n, _, _ := strings.Cut(rest, "\n")
		id, _ = strconv.ParseInt(n, 10, 64)
	}
	r.ids = append(r.ids, id)
	return len(p), nil
}

// BenchmarkEventStreamFanOut measures one published event reaching 100 open streams.
func BenchmarkEventStreamFanOut(b *testing.B) {
	f := newRTFixture(b)
	const clients = 100
	got := make(chan int64, clients*16)
	var streams []*sseStream
	for range clients {
		s := f.openStream(b, "", "")
		streams = append(streams, s)
		go func() {
			for e := range s.events {
				id, _ := strconv.ParseInt(e.id, 10, 64)
				got <- id
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // every stream subscribed
	bus := f.vms.Bus()
	b.ResetTimer()
	for range b.N {
		bus.Publish(vmm.EventUpdated, "web", "")
		for range clients {
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				b.Fatal("an event did not reach every stream")
			}
		}
	}
	b.StopTimer()
	for _, s := range streams {
		s.cancel()
	}
}
