package api

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// TestOpenAPIRealtimeSchemas checks, like TestOpenAPISchemas, that the schemas of the live
// endpoints have exactly the JSON fields of their Go types, and that the error codes these
// endpoints add are documented.
func TestOpenAPIRealtimeSchemas(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
				Required   []string                   `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   any
	}{
		{"ConsoleTicket", ConsoleTicket{}},
		{"VMStats", VMStats{}},
		{"DiskStats", DiskStats{}},
		{"NICStats", NICStats{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := doc.Components.Schemas[tt.name]
			if !ok {
				t.Fatalf("no schema %s", tt.name)
			}
			var got, want []string
			for k := range s.Properties {
				got = append(got, k)
			}
			typ := reflect.TypeOf(tt.in)
			for i := range typ.NumField() {
				name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
				if name != "" && name != "-" {
					want = append(want, name)
				}
			}
			sort.Strings(got)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("schema %s properties %v; Go type fields %v", tt.name, got, want)
			}
			for _, r := range s.Required {
				if _, ok := s.Properties[r]; !ok {
					t.Errorf("schema %s requires %q, which it does not define", tt.name, r)
				}
			}
		})
	}
	if !strings.Contains(string(openapiDoc), `"`+CodeForbidden+`"`) {
		t.Errorf("error code %q is not in the document", CodeForbidden)
	}
}
