import { describe, expect, it } from "vitest";
import { ACK_EVERY, ackAfter } from "./socket";

describe("socket acknowledgements", () => {
  it("acknowledges every ACK_EVERY messages with the running count", () => {
    const sent = [];
    for (let n = 1; n <= ACK_EVERY * 3 + 5; n++) {
      const a = ackAfter(n);
      if (a) sent.push(a);
    }
    expect(sent).toEqual([1, 2, 3].map((k) => ({ type: "ack", received: k * ACK_EVERY })));
    // Well inside the server's bound, so a reader that keeps up is never dropped.
    expect(ACK_EVERY).toBeLessThan(1024 / 4);
  });
});
