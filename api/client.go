package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client is a Go client for lqd's REST API. Its zero value is not usable; use NewClient.
// Every call takes a context; the client sets no timeout of its own, because some calls
// (shutdown, reboot, exec, image upload) legitimately take minutes.
type Client struct {
	BaseURL    string       // e.g. http://127.0.0.1:7480, without /api/v1
	Token      string       // bearer token for /api/v1
	HTTPClient *http.Client // no Timeout: deadlines come from each call's ctx
}

// NewClient returns a client for the lqd at baseURL that authenticates with token.
func NewClient(baseURL, token string) *Client {
	return &Client{
		BaseURL:    strings.TrimRight(baseURL, "/"),
		Token:      token,
		HTTPClient: &http.Client{},
	}
}

// APIError is a non-2xx answer from lqd.
type APIError struct {
	Status  int    // HTTP status code
	Code    string // one of the Code* constants, or derived from Status if the body was not JSON
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("lq: %s: %s (HTTP %d)", e.Code, e.Message, e.Status)
}

// maxClientErrorBody bounds how much of an error response is read.
const maxClientErrorBody = 64 << 10

// newAPIError builds the error for a non-2xx response, preferring the JSON error body.
func newAPIError(resp *http.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxClientErrorBody))
	var e Error
	if err := json.Unmarshal(body, &e); err == nil && (e.Error.Code != "" || e.Error.Message != "") {
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	msg := http.StatusText(resp.StatusCode)
	if msg == "" {
		msg = "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/plain" {
		if line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n"); line != "" {
			if len(line) > 200 {
				line = line[:200] + "..."
			}
			msg += ": " + line
		}
	}
	return &APIError{Status: resp.StatusCode, Code: codeForStatus(resp.StatusCode), Message: msg}
}

// codeForStatus guesses an error code for a response that carried none (e.g. from a proxy).
func codeForStatus(status int) string {
	switch {
	case status == http.StatusBadRequest:
		return CodeBadRequest
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return CodeUnauthorized
	case status == http.StatusNotFound:
		return CodeNotFound
	case status == http.StatusConflict:
		return CodeConflict
	case status == http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case status == http.StatusUnprocessableEntity:
		return CodeInvalid
	case status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		return CodeUnavailable
	case status >= 500:
		return CodeInternal
	default:
		return "http_" + strconv.Itoa(status)
	}
}

// clientRequest is one API call.
type clientRequest struct {
	method      string
	path        string     // already escaped, e.g. /api/v1/vms/a%20b
	query       url.Values // nil for none
	body        io.Reader  // nil for none
	contentType string
	auth        bool
}

// send performs req and returns the response if its status is 2xx; otherwise an *APIError.
// The caller closes the body.
func (c *Client) send(ctx context.Context, req clientRequest) (*http.Response, error) {
	u := c.BaseURL + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, req.body)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", req.method, req.path, err)
	}
	if req.contentType != "" {
		hr.Header.Set("Content-Type", req.contentType)
	}
	hr.Header.Set("Accept", "application/json")
	if req.auth {
		hr.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		// *url.Error would repeat the method and URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s: %w", req.method, u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, newAPIError(resp)
	}
	return resp, nil
}

// do performs an authenticated JSON call: in (if non-nil) is the request body, out (if
// non-nil) receives the decoded response.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	req := clientRequest{method: method, path: path, query: query, auth: true}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s body: %w", method, path, err)
		}
		req.body = bytes.NewReader(b)
		req.contentType = "application/json"
	}
	resp, err := c.send(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s response: %w", method, path, err)
	}
	return nil
}

func escapedVMPath(name string) string    { return "/api/v1/vms/" + url.PathEscape(name) }
func escapedImagePath(name string) string { return "/api/v1/images/" + url.PathEscape(name) }

// Health checks GET /healthz, which needs no token.
func (c *Client) Health(ctx context.Context) error {
	resp, err := c.send(ctx, clientRequest{method: http.MethodGet, path: "/healthz"})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var h struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return fmt.Errorf("decode GET /healthz response: %w", err)
	}
	if h.Status != "ok" {
		return fmt.Errorf("GET /healthz: status %q, want \"ok\"", h.Status)
	}
	return nil
}

// Host describes the host lqd runs on.
func (c *Client) Host(ctx context.Context) (Host, error) {
	var h Host
	err := c.do(ctx, http.MethodGet, "/api/v1/host", nil, nil, &h)
	return h, err
}

// VMs lists all VMs.
func (c *Client) VMs(ctx context.Context) ([]VM, error) {
	var vms []VM
	err := c.do(ctx, http.MethodGet, "/api/v1/vms", nil, nil, &vms)
	return vms, err
}

// VM gets one VM by name.
func (c *Client) VM(ctx context.Context, name string) (VM, error) {
	var vm VM
	err := c.do(ctx, http.MethodGet, escapedVMPath(name), nil, nil, &vm)
	return vm, err
}

// CreateVM defines a VM (and starts it if req.Start).
func (c *Client) CreateVM(ctx context.Context, req CreateVMRequest) (VM, error) {
	var vm VM
	err := c.do(ctx, http.MethodPost, "/api/v1/vms", nil, req, &vm)
	return vm, err
}

// UpdateVM changes the fields of req that are non-nil.
func (c *Client) UpdateVM(ctx context.Context, name string, req UpdateVMRequest) (VM, error) {
	var vm VM
	err := c.do(ctx, http.MethodPatch, escapedVMPath(name), nil, req, &vm)
	return vm, err
}

// DeleteVM deletes a VM and its disk; force stops it first if it runs.
func (c *Client) DeleteVM(ctx context.Context, name string, force bool) error {
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	return c.do(ctx, http.MethodDelete, escapedVMPath(name), q, nil, nil)
}

// VMAction runs a lifecycle action (start, stop, shutdown, reboot, reset, pause or resume) and returns the VM
// afterwards. body is nil or, for shutdown and reboot, a ShutdownRequest; those calls last
// up to its timeout, so ctx should allow for that.
func (c *Client) VMAction(ctx context.Context, name, action string, body any) (VM, error) {
	var vm VM
	err := c.do(ctx, http.MethodPost, escapedVMPath(name)+"/"+url.PathEscape(action), nil, body, &vm)
	return vm, err
}

// ConsoleLog returns the VM's serial console output so far; tail > 0 keeps only its last
// tail bytes.
func (c *Client) ConsoleLog(ctx context.Context, name string, tail int64) ([]byte, error) {
	var q url.Values
	if tail > 0 {
		q = url.Values{"tail": {strconv.FormatInt(tail, 10)}}
	}
	path := escapedVMPath(name) + "/console-log"
	resp, err := c.send(ctx, clientRequest{method: http.MethodGet, path: path, query: q, auth: true})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read GET %s response: %w", path, err)
	}
	return b, nil
}

// Exec runs a program in the guest through its agent and waits for it to finish.
func (c *Client) Exec(ctx context.Context, name string, req ExecRequest) (ExecResult, error) {
	var res ExecResult
	err := c.do(ctx, http.MethodPost, escapedVMPath(name)+"/exec", nil, req, &res)
	return res, err
}

// Images lists the image library.
func (c *Client) Images(ctx context.Context) ([]Image, error) {
	var imgs []Image
	err := c.do(ctx, http.MethodGet, "/api/v1/images", nil, nil, &imgs)
	return imgs, err
}

// Image gets one image by name.
func (c *Client) Image(ctx context.Context, name string) (Image, error) {
	var img Image
	err := c.do(ctx, http.MethodGet, escapedImagePath(name), nil, nil, &img)
	return img, err
}

// DeleteImage removes an image from the library.
func (c *Client) DeleteImage(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, escapedImagePath(name), nil, nil, nil)
}

// ImageUpload is what ImportImage sends. Nil readers are left out: a kernel-only image has
// no Disk (lqd then creates a small empty disk).
type ImageUpload struct {
	Name    string
	Format  string // qcow2 | raw; empty lets lqd detect it
	Cmdline string // kernel command line, with Kernel
	Disk    io.Reader
	Kernel  io.Reader
	Initrd  io.Reader
}

// ImportImage uploads an image as multipart/form-data, streaming the files: fields name,
// format, cmdline, then the parts disk, kernel and initrd, in that order.
func (c *Client) ImportImage(ctx context.Context, up ImageUpload) (Image, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeImageUpload(mw, up))
	}()
	// Unblocks the writer goroutine if the request ends before it has sent everything.
	defer pr.Close()

	resp, err := c.send(ctx, clientRequest{
		method:      http.MethodPost,
		path:        "/api/v1/images",
		body:        pr,
		contentType: mw.FormDataContentType(),
		auth:        true,
	})
	if err != nil {
		return Image{}, err
	}
	defer resp.Body.Close()
	var img Image
	if err := json.NewDecoder(resp.Body).Decode(&img); err != nil {
		return Image{}, fmt.Errorf("decode POST /api/v1/images response: %w", err)
	}
	return img, nil
}

// writeImageUpload writes the multipart body of an image upload to mw and closes it.
func writeImageUpload(mw *multipart.Writer, up ImageUpload) error {
	fields := []struct{ name, value string }{
		{"name", up.Name},
		{"format", up.Format},
		{"cmdline", up.Cmdline},
	}
	for _, f := range fields {
		if f.value == "" && f.name != "name" {
			continue
		}
		if err := mw.WriteField(f.name, f.value); err != nil {
			return fmt.Errorf("write field %s: %w", f.name, err)
		}
	}
	files := []struct {
		name string
		r    io.Reader
	}{
		{"disk", up.Disk},
		{"kernel", up.Kernel},
		{"initrd", up.Initrd},
	}
	for _, f := range files {
		if f.r == nil {
			continue
		}
		w, err := mw.CreateFormFile(f.name, f.name)
		if err != nil {
			return fmt.Errorf("start part %s: %w", f.name, err)
		}
		if _, err := io.Copy(w, f.r); err != nil {
			return fmt.Errorf("send %s: %w", f.name, err)
		}
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("finish multipart body: %w", err)
	}
	return nil
}

// Events returns up to limit events with ID > after, oldest first (limit <= 0: the
// server's default).
func (c *Client) Events(ctx context.Context, after int64, limit int) ([]Event, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var evs []Event
	err := c.do(ctx, http.MethodGet, "/api/v1/events", q, nil, &evs)
	return evs, err
}

// IsNotFound reports whether err is an APIError with code not_found.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == CodeNotFound
}

// ConsoleTicket asks for a single-use ticket for one console WebSocket of a VM.
func (c *Client) ConsoleTicket(ctx context.Context, name string) (ConsoleTicket, error) {
	var t ConsoleTicket
	err := c.do(ctx, http.MethodPost, "/api/v1/vms/"+url.PathEscape(name)+"/console-ticket", nil, nil, &t)
	return t, err
}
