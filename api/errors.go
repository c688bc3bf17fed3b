package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/limiquantix/limiquantix/netdev"
	"github.com/limiquantix/limiquantix/netdev/firewall"
	"github.com/limiquantix/limiquantix/storage"
	"github.com/limiquantix/limiquantix/store"
	"github.com/limiquantix/limiquantix/vmm"
)

// httpError is an error that already knows its status and code.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, code, format string, args ...any) error {
	return &httpError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// classify maps an error from vmm, storage or store to a status and a code. Everything
// unrecognised is a 500: a bug or a host failure, never the client's fault.
func classify(err error) (int, string) {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.status, he.code
	case errors.As(err, &mbe), errors.Is(err, storage.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, CodeTooLarge
	case errors.Is(err, vmm.ErrInvalid), errors.Is(err, storage.ErrInvalid), errors.Is(err, netdev.ErrInvalid), errors.Is(err, firewall.ErrInvalid):
		return http.StatusBadRequest, CodeInvalid
	case errors.Is(err, vmm.ErrNotFound), errors.Is(err, store.ErrNotFound), errors.Is(err, netdev.ErrNotFound):
		return http.StatusNotFound, CodeNotFound
	case errors.Is(err, vmm.ErrInUse), errors.Is(err, store.ErrInUse), errors.Is(err, netdev.ErrInUse):
		return http.StatusConflict, CodeInUse
	case errors.Is(err, vmm.ErrConflict), errors.Is(err, store.ErrConflict), errors.Is(err, netdev.ErrConflict), errors.Is(err, netdev.ErrExhausted):
		return http.StatusConflict, CodeConflict
	case errors.Is(err, vmm.ErrTimeout):
		return http.StatusGatewayTimeout, CodeTimeout
	case errors.Is(err, vmm.ErrAgent):
		return http.StatusServiceUnavailable, CodeUnavailable
	}
	return http.StatusInternalServerError, CodeInternal
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		msg = fmt.Sprintf("%s (request %s)", msg, middleware.GetReqID(r.Context()))
	}
	writeJSON(w, status, Error{Error: ErrorBody{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// writeList answers 200 with items converted to their wire type; an empty list is [],
// never null.
func writeList[T, U any](w http.ResponseWriter, items []T, conv func(T) U) {
	out := make([]U, 0, len(items))
	for _, it := range items {
		out = append(out, conv(it))
	}
	writeJSON(w, http.StatusOK, out)
}

// decodeJSON reads exactly one JSON value with no unknown fields. An empty body is
// allowed only when optional.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	body := http.MaxBytesReader(w, r.Body, maxJSONBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF) && optional:
			return nil
		case errors.Is(err, io.EOF):
			return errorf(http.StatusBadRequest, CodeBadRequest, "request body is empty; JSON expected")
		case errors.As(err, &mbe):
			return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body over %d bytes", maxJSONBody)
		}
		return errorf(http.StatusBadRequest, CodeBadRequest, "malformed JSON: %v", err)
	}
	// Exactly one value: only white space may follow it. (dec.More alone lets a stray "]" or
	// "}" through, and reports nothing when the limit is hit while skipping white space.)
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body over %d bytes", maxJSONBody)
		}
		return errorf(http.StatusBadRequest, CodeBadRequest, "malformed JSON: more than one value, or data after the value")
	}
	return nil
}

func queryInt(r *http.Request, key string, def, lo, hi int64) (int64, error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, errorf(http.StatusBadRequest, CodeInvalid, "query %s=%q: want an integer from %d to %d", key, s, lo, hi)
	}
	return n, nil
}
