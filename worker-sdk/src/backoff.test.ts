import { describe, expect, it } from "vitest";
import { backoffDelay, sleep } from "./backoff.ts";

describe("backoff", () => {
  it("draws uniformly below an exponential cap (full jitter)", () => {
    expect(backoffDelay(0, {}, () => 0.999)).toBe(99);
    expect(backoffDelay(3, {}, () => 0.5)).toBe(400);
    expect(backoffDelay(50, {}, () => 0.999)).toBe(9_990);
    expect(backoffDelay(5, {}, () => 0)).toBe(0);
  });

  it("sleep ends early, without rejecting, when its signal aborts", async () => {
    const controller = new AbortController();
    const started = Date.now();
    const slept = sleep(10_000, controller.signal);
    controller.abort();
    await slept;
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
