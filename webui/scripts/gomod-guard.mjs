// `go build ./...` and `go vet ./...` walk every directory without a go.mod, node_modules
// included: a package that ships .go files would break them. An empty module there keeps
// the go tool out.
import { writeFileSync, existsSync } from "node:fs";

if (existsSync("node_modules")) writeFileSync("node_modules/go.mod", "// Keeps the go tool out of node_modules.\nmodule ignore.invalid/node_modules\n");
