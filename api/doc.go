// Package api is limiquantix's REST surface: the chi server that translates HTTP into calls
// on vmm and storage, bearer-token auth, the OpenAPI document, the wire types, and the Go
// client that lq (and later lqcoord) uses. It decides nothing itself: vmm decides.
package api
