package api

import (
	_ "embed"
	"net/http"
)

// openapiDoc describes this API; a test checks that it names every route the router has.
//
//go:embed openapi.json
var openapiDoc []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiDoc)
}
