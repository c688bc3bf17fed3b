import { describe, expect, it } from "vitest";
import { SSEParser, type SSEMessage } from "./sse";

function parse(chunks: string[]) {
  const out: SSEMessage[] = [];
  const retries: number[] = [];
  const p = new SSEParser(
    (m) => out.push(m),
    (ms) => retries.push(ms),
  );
  for (const c of chunks) p.feed(c);
  return { out, retries, lastEventId: p.lastEventId };
}

/** Every way of cutting s in two, and one character at a time. */
function splits(s: string): string[][] {
  const all: string[][] = [[s], [...s]];
  for (let i = 1; i < s.length; i++) all.push([s.slice(0, i), s.slice(i)]);
  return all;
}

const STREAM =
  "retry: 2000\n\n" +
  'id: 41\nevent: vm.state\ndata: {"id":41,"type":"vm.state","vm":"web-1","message":"running"}\n\n' +
  ": heartbeat\n\n" +
  "id: 42\r\nevent: vm.created\r\ndata: line one\r\ndata: line two\r\n\r\n" +
  "data:no-space\rid:43\r\r" +
  "data: after the last id\n\n";

describe("SSEParser", () => {
  it("parses id, event and data fields and keeps the last event id", () => {
    const { out, retries, lastEventId } = parse([STREAM]);
    expect(retries).toEqual([2000]);
    expect(out).toEqual([
      { id: "41", event: "vm.state", data: '{"id":41,"type":"vm.state","vm":"web-1","message":"running"}' },
      { id: "42", event: "vm.created", data: "line one\nline two" },
      { id: "43", event: "message", data: "no-space" },
      { id: "43", event: "message", data: "after the last id" },
    ]);
    expect(lastEventId).toBe("43");
  });

  it("gives the same messages however the stream is cut into chunks", () => {
    const want = parse([STREAM]).out;
    for (const chunks of splits(STREAM)) {
      expect(parse(chunks).out, JSON.stringify(chunks.slice(0, 2))).toEqual(want);
    }
  });

  it("treats CR LF split across chunks as one line end", () => {
    const { out } = parse(["data: a\r", "\ndata: b\r", "\n\r", "\n"]);
    expect(out).toEqual([{ id: "", event: "message", data: "a\nb" }]);
  });

  it("does not dispatch an unfinished message, nor one without data", () => {
    expect(parse(["event: x\n\n", "id: 7\n\n", "data: partial\n"]).out).toEqual([]);
    expect(parse(["id: 7\n\n"]).lastEventId).toBe("7");
  });

  it("ignores comments, unknown fields, ids with NUL and a bad retry", () => {
    const { out, retries, lastEventId } = parse([": hi\nfoo: bar\nid: 5\nid: 6\u0000\nretry: 1s\ndata\n\n"]);
    expect(out).toEqual([{ id: "5", event: "message", data: "" }]);
    expect(retries).toEqual([]);
    expect(lastEventId).toBe("5");
  });

  it("strips a byte order mark at the start only", () => {
    expect(parse(["\ufeffdata: x\n\n"]).out[0].data).toBe("x");
    expect(parse(["data: x\n\n", "\ufeffdata: y\n\n"]).out.length).toBe(1); // a field named "\ufeffdata" is unknown
  });

  it("keeps event type per message", () => {
    const { out } = parse(["event: a\ndata: 1\n\ndata: 2\n\n"]);
    expect(out.map((m) => m.event)).toEqual(["a", "message"]);
  });
});
