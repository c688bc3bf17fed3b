package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/limiquantix/limiquantix/store"
)

// Server-sent events: GET /api/v1/events with "Accept: text/event-stream" streams the
// event log. With a cursor (the Last-Event-ID header that EventSource sends when it
// reconnects, or ?after=), it first sends the recorded events after it, then live ones;
// without one, live events only. Each event goes out once, in id order, with no gap
// between backlog and live: the stream subscribes to the bus before it reads the backlog,
// skips live events it has already sent, and fills any hole in the ids (the bus drops
// events for a reader that falls behind; concurrent publishers may deliver out of order)
// from the database, which has every event before the bus sees it.

// Event stream tuning.
const (
	sseHeartbeat   = 15 * time.Second
	sseBacklogPage = 500
	sseBuffer      = 256 // live events held for a slow reader before the bus drops the oldest
	sseRetryMillis = 2000
)

// wantsEventStream reports whether the client accepts text/event-stream.
func wantsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
				return true
			}
		}
	}
	return false
}

// eventCursor is the id after which the stream starts, or -1 for "live only".
func eventCursor(r *http.Request) (int64, error) {
	raw, what := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if raw == "" {
		raw, what = r.URL.Query().Get("after"), "query after"
	}
	if raw == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil || n < 0 {
		return 0, errorf(http.StatusBadRequest, CodeInvalid, "%s=%q: want an event id (an integer, 0 or more)", what, raw)
	}
	return n, nil
}

// streamEvents serves the event log as server-sent events until the client goes.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.rt.live(r)
	defer cancel()
	after, err := eventCursor(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	live, unsubscribe := s.vms.Bus().Subscribe(sseBuffer)
	defer unsubscribe()

	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{}) // a stream outlives any server write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	es := &eventStream{w: w, db: s.db, last: after}
	fmt.Fprintf(w, "retry: %d\n\n", sseRetryMillis)
	if after >= 0 {
		if err := es.catchUp(ctx, math.MaxInt64); err != nil {
			s.log.Warn("event stream: backlog", "err", err)
			return
		}
	}
	if err := rc.Flush(); err != nil {
		return
	}
	t := time.NewTicker(s.rt.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
				return
			}
		case e := <-live:
			if err := es.deliver(ctx, e); err != nil {
				if ctx.Err() == nil {
					s.log.Warn("event stream", "err", err)
				}
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// eventStream writes events in id order, each once.
type eventStream struct {
	w    io.Writer
	db   *store.DB
	last int64 // id of the last event sent; -1 before the first when there was no cursor
}

// deliver sends a live event unless it was sent already, first filling any gap before it
// from the database.
func (es *eventStream) deliver(ctx context.Context, e store.Event) error {
	switch {
	case e.ID == 0: // the bus could not record it: it has no id to resume from
		return es.send(e)
	case es.last < 0, e.ID == es.last+1:
		return es.send(e)
	case e.ID <= es.last:
		return nil
	}
	if err := es.catchUp(ctx, e.ID); err != nil {
		return err
	}
	if e.ID > es.last { // not in the database after all
		return es.send(e)
	}
	return nil
}

// catchUp sends recorded events after the last one sent, up to id upTo.
func (es *eventStream) catchUp(ctx context.Context, upTo int64) error {
	for {
		evs, err := es.db.Events(ctx, es.last, sseBacklogPage)
		if err != nil {
			return fmt.Errorf("api: event stream after %d: %w", es.last, err)
		}
		for _, e := range evs {
			if e.ID > upTo {
				return nil
			}
			if err := es.send(e); err != nil {
				return err
			}
		}
		if len(evs) < sseBacklogPage {
			return nil
		}
	}
}

func (es *eventStream) send(e store.Event) error {
	data, err := json.Marshal(toAPIEvent(e))
	if err != nil {
		return fmt.Errorf("api: event %d: %w", e.ID, err)
	}
	var b strings.Builder
	if e.ID > 0 {
		fmt.Fprintf(&b, "id: %d\n", e.ID)
	}
	fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", e.Type, data)
	if _, err := io.WriteString(es.w, b.String()); err != nil {
		return fmt.Errorf("api: event stream: %w", err)
	}
	if e.ID > es.last {
		es.last = e.ID
	}
	return nil
}
