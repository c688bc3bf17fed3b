package api_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/limiquantix/limiquantix/api"
)

// openapiDoc is the part of the OpenAPI document these tests read.
type openapiDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Security   []map[string][]string                 `json:"security"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		} `json:"schemas"`
	} `json:"components"`
}

// operation is one method of a path item.
type operation struct {
	Security   *[]map[string][]string `json:"security"`
	Parameters []struct {
		Name   string `json:"name"`
		In     string `json:"in"`
		Schema struct {
			Enum []string `json:"enum"`
		} `json:"schema"`
	} `json:"parameters"`
}

// loadOpenAPI fetches the document the server serves (the embedded openapi.json).
func loadOpenAPI(t *testing.T, f *fixture) openapiDoc {
	t.Helper()
	r := f.send(t, request{method: "GET", path: "/api/v1/openapi.json", auth: "-"})
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET openapi.json: %d %q", r.status, r.header.Get("Content-Type"))
	}
	var doc openapiDoc
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	return doc
}

// pathItemFields are the keys of an OpenAPI path item that are not operations.
var pathItemFields = map[string]bool{"$ref": true, "summary": true, "description": true, "servers": true, "parameters": true}

// docOperations returns "METHOD /path" for every operation in the document, sorted.
func docOperations(doc openapiDoc) []string {
	var out []string
	for path, item := range doc.Paths {
		for k := range item {
			if !pathItemFields[k] {
				out = append(out, strings.ToUpper(k)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// chiParam matches a chi parameter with a regexp, {action:start|stop}, capturing its name
// and its pattern.
var chiParam = regexp.MustCompile(`\{([^}:]+):([^}]*)\}`)

// routerOperations returns "METHOD /path" for every route the router registers, with chi's
// {name:regexp} written as OpenAPI's {name}, sorted; and each regexp parameter's alternatives.
func routerOperations(t *testing.T, h http.Handler) ([]string, map[string][]string) {
	t.Helper()
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("Handler() is a %T, not chi.Routes", h)
	}
	var out []string
	enums := map[string][]string{}
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		for _, m := range chiParam.FindAllStringSubmatch(route, -1) {
			enums[m[1]] = strings.Split(strings.Trim(m[2], "^$()"), "|")
		}
		out = append(out, method+" "+chiParam.ReplaceAllString(route, "{$1}"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out, enums
}

func TestOpenAPIMatchesRouter(t *testing.T) {
	f := newFixture(t)
	doc := loadOpenAPI(t, f)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf(`"openapi": %q, want 3.x`, doc.OpenAPI)
	}
	routes, enums := routerOperations(t, f.handler)
	if len(routes) == 0 {
		t.Fatal("chi.Walk found no routes")
	}
	ops := docOperations(doc)
	if got, want := strings.Join(ops, "\n"), strings.Join(routes, "\n"); got != want {
		t.Errorf("OpenAPI operations:\n%s\n\nrouter routes:\n%s", got, want)
	}

	// A path parameter that chi restricts by a regexp is an enum of the same values.
	for param, values := range enums {
		found := false
		for path, item := range doc.Paths {
			if !strings.Contains(path, "{"+param+"}") {
				continue
			}
			var params []json.RawMessage
			if raw, ok := item["parameters"]; ok {
				json.Unmarshal(raw, &params)
			}
			for _, raw := range params {
				var p struct {
					Name   string `json:"name"`
					Schema struct {
						Enum []string `json:"enum"`
					} `json:"schema"`
				}
				json.Unmarshal(raw, &p)
				if p.Name != param {
					continue
				}
				found = true
				got, want := append([]string(nil), p.Schema.Enum...), append([]string(nil), values...)
				sort.Strings(got)
				sort.Strings(want)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s {%s}: enum %v, router accepts %v", path, param, p.Schema.Enum, values)
				}
			}
		}
		if !found {
			t.Errorf("no OpenAPI path documents parameter {%s} (router accepts %v)", param, values)
		}
	}
}

// TestOpenAPISecurity checks that the document says which operations need a token, and that
// it says so truthfully: every route is called without one.
func TestOpenAPISecurity(t *testing.T) {
	f := newFixture(t)
	doc := loadOpenAPI(t, f)
	if len(doc.Security) == 0 {
		t.Fatal("the document has no top-level security requirement")
	}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if pathItemFields[method] {
				continue
			}
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			open := op.Security != nil && len(*op.Security) == 0
			name := strings.ToUpper(method) + " " + path
			t.Run(name, func(t *testing.T) {
				concrete := strings.NewReplacer("{name}", "nope", "{action}", "start").Replace(path)
				r := f.send(t, request{method: strings.ToUpper(method), path: concrete, auth: "-"})
				if got := r.status != http.StatusUnauthorized; got != open {
					t.Errorf("documented as open=%v, but without a token the server answers %d", open, r.status)
				}
			})
		}
	}
}

// TestOpenAPISchemas checks that each documented schema has exactly the JSON fields of the Go
// type that the server writes or reads.
func TestOpenAPISchemas(t *testing.T) {
	f := newFixture(t)
	doc := loadOpenAPI(t, f)
	tests := []struct {
		name string
		in   any
		omit []string // fields the Go type has that the document leaves out on purpose
	}{
		{"Error", api.Error{}, nil},
		{"VM", api.VM{}, nil},
		{"Guest", api.Guest{}, nil},
		{"CreateVMRequest", api.CreateVMRequest{}, nil},
		// The server refuses disk_gib in a PATCH (400), so the document does not offer it.
		{"UpdateVMRequest", api.UpdateVMRequest{}, []string{"disk_gib"}},
		{"ShutdownRequest", api.ShutdownRequest{}, nil},
		{"ExecRequest", api.ExecRequest{}, nil},
		{"ExecResult", api.ExecResult{}, nil},
		{"Image", api.Image{}, nil},
		{"Host", api.Host{}, nil},
		{"Event", api.Event{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := doc.Components.Schemas[tt.name]
			if !ok {
				t.Fatalf("no schema %s", tt.name)
			}
			var got []string
			for k := range s.Properties {
				got = append(got, k)
			}
			sort.Strings(got)
			skip := map[string]bool{}
			for _, o := range tt.omit {
				skip[o] = true
			}
			var want []string
			typ := reflect.TypeOf(tt.in)
			for i := range typ.NumField() {
				name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
				if name != "" && name != "-" && !skip[name] {
					want = append(want, name)
				}
			}
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("schema %s properties:\n%v\nGo type %s fields:\n%v", tt.name, got, typ, want)
			}
			for _, r := range s.Required {
				if _, ok := s.Properties[r]; !ok {
					t.Errorf("schema %s requires %q, which it does not define", tt.name, r)
				}
			}
		})
	}
}
