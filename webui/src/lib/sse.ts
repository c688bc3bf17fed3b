// A server-sent-events parser (the WHATWG "event stream" format), fed with text chunks as
// they arrive from fetch(). EventSource cannot send an Authorization header, so the app
// reads the stream itself.

export interface SSEMessage {
  /** The last event ID seen so far (the stream's, not only this message's). */
  id: string;
  /** The event type; "message" when the server gave none. */
  event: string;
  data: string;
}

export class SSEParser {
  /** Last-Event-ID to send when reconnecting. */
  lastEventId = "";
  private buf = "";
  private data: string[] = [];
  private event = "";
  private sawCR = false; // the previous chunk ended in CR: a leading LF belongs to it
  private started = false;

  constructor(
    private readonly onMessage: (m: SSEMessage) => void,
    private readonly onRetry?: (ms: number) => void,
  ) {}

  /** Feed decoded text; complete messages are dispatched synchronously. */
  feed(chunk: string): void {
    if (!this.started && chunk.length > 0) {
      this.started = true;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    if (this.sawCR && chunk.startsWith("\n")) chunk = chunk.slice(1);
    this.sawCR = false;
    this.buf += chunk;
    let start = 0;
    for (;;) {
      let i = start;
      const n = this.buf.length;
      while (i < n && this.buf[i] !== "\n" && this.buf[i] !== "\r") i++;
      if (i >= n) break;
      const line = this.buf.slice(start, i);
      if (this.buf[i] === "\r") {
        if (i + 1 < n) start = this.buf[i + 1] === "\n" ? i + 2 : i + 1;
        else {
          start = i + 1;
          this.sawCR = true;
        }
      } else start = i + 1;
      this.line(line);
    }
    this.buf = this.buf.slice(start);
  }

  /** The stream ended: an unterminated message is discarded, as the spec says. */
  reset(): void {
    this.buf = "";
    this.data = [];
    this.event = "";
    this.sawCR = false;
  }

  private line(line: string): void {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return; // comment, e.g. a keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.event = value;
        break;
      case "data":
        this.data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.onRetry?.(parseInt(value, 10));
        break;
    }
  }

  private dispatch(): void {
    if (this.data.length === 0) {
      this.event = "";
      return;
    }
    const m: SSEMessage = { id: this.lastEventId, event: this.event || "message", data: this.data.join("\n") };
    this.data = [];
    this.event = "";
    this.onMessage(m);
  }
}
