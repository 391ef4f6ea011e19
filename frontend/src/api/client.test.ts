import { afterEach, describe, expect, it, vi } from "vitest";
import { api, setCsrf } from "./client";
import { ApiError, ERROR_MESSAGES } from "./errors";
import { modelConfigured } from "../pages/Home";
import { modelProblem } from "../pages/Settings";
import type { ModelsResponse } from "./types";

function answer(status: number, body: unknown, headers: Record<string, string> = {}) {
  return vi.fn(async (_url: string, _init?: RequestInit) => new Response(body === null ? null : JSON.stringify(body), { status, headers }));
}

afterEach(() => { vi.unstubAllGlobals(); setCsrf(null); });

describe("API client", () => {
  it("sends the CSRF token on writes only, with the session cookie", async () => {
    const f = answer(201, { id: "a1" });
    vi.stubGlobal("fetch", f);
    setCsrf("tok");
    await api.createApp({ title: "x" });
    await api.apps({ search: "q", page: 2 });
    const calls = f.mock.calls as [string, RequestInit][];
    const write = calls[0]![1];
    const [url, read] = calls[1]!;
    expect((write.headers as Record<string, string>)["X-CSRF-Token"]).toBe("tok");
    expect(write.credentials).toBe("include");
    expect((read.headers as Record<string, string>)["X-CSRF-Token"]).toBeUndefined();
    expect(url).toBe("/api/apps?search=q&page=2");
  });

  it("turns every error code into a message for people, keeping the server's detail", async () => {
    for (const code of ["E000", "E001", "E002", "E003", "E004", "E005", "E006", "E007"] as const) {
      vi.stubGlobal("fetch", answer(400, { error: { code, message: "detail here", fields: { title: "too long" } } }, { "Retry-After": "7" }));
      const e = await api.app("x").catch((e: unknown) => e);
      expect(e).toBeInstanceOf(ApiError);
      const err = e as ApiError;
      expect(err.code).toBe(code);
      expect(err.message).toContain(ERROR_MESSAGES[code]);
      expect(err.message).toContain("detail here");
      expect(err.fields).toEqual({ title: "too long" });
      expect(err.retryAfter).toBe(7);
    }
  });

  it("says offline when the server cannot be reached, and unavailable on a 503", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => { throw new TypeError("Failed to fetch"); }));
    const off = (await api.me().catch((e: unknown) => e)) as ApiError;
    expect(off.code).toBe("network");
    expect(off.message).toBe(ERROR_MESSAGES.network);
    vi.stubGlobal("fetch", answer(503, { error: { code: "E000", message: "SECRETS_ENCRYPTION_KEY is not set" } }));
    const na = (await api.keys().catch((e: unknown) => e)) as ApiError;
    expect(na.message).toMatch(/^Not available on this server right now/);
  });

  it("says a refusal by the state of things (409) as such, not as bad input", async () => {
    vi.stubGlobal("fetch", answer(409, { error: { code: "E004", message: "a run is under way" } }));
    const busy = (await api.app("x").catch((e: unknown) => e)) as ApiError;
    expect(busy.message).toBe("That cannot be done right now. (a run is under way)");
    expect(busy.message).not.toContain(ERROR_MESSAGES.E004);
  });
});

describe("an expired session", () => {
  it("tells every screen when the API answers 401", async () => {
    const seen: string[] = [];
    vi.stubGlobal("window", { dispatchEvent: (e: Event) => { seen.push(e.type); return true; } });
    vi.stubGlobal("fetch", answer(401, { error: { code: "E001", message: "session revoked" } }));
    await api.apps({}).catch(() => {});
    await api.login("a@b.c", "x").catch(() => {});
    expect(seen).toEqual(["byte-signed-out"]);
  });
});

describe("the no-model notice", () => {
  type Name = ModelsResponse["providers"][number]["provider"];
  const choice = (provider: Name) => ({ primary: { provider, model: "m", temperature: 0.3, maxTokens: 100 }, fallback: null, override: null });
  const provider = (name: Name, usable: boolean) => ({ provider: name, platformKey: false, userKey: usable, usable, models: [] });
  const models = (primary: Name, usable: Name[] = []): ModelsResponse => ({
    operations: { blueprint: choice(primary), implementation: choice(primary) },
    providers: (["anthropic", "custom"] as Name[]).map((p) => provider(p, usable.includes(p))),
    gateway: false,
    customBaseUrl: false,
  });
  it("shows when the server can call none of the planning and writing models' providers", () => {
    expect(modelConfigured(models("anthropic"))).toBe(false);
    expect(modelConfigured(models("custom", ["anthropic"]))).toBe(false);
  });
  it("hides when the server can call them (an own or platform key, the gateway, a local server)", () => {
    expect(modelConfigured(models("anthropic", ["anthropic"]))).toBe(true);
    expect(modelConfigured(models("custom", ["custom"]))).toBe(true);
    const fallback = models("anthropic", ["custom"]);
    fallback.operations.blueprint!.fallback = choice("custom").primary;
    fallback.operations.implementation!.fallback = choice("custom").primary;
    expect(modelConfigured(fallback)).toBe(true);
  });
});

describe("the model form's validation", () => {
  it("asks for a provider and a model id the server accepts", () => {
    expect(modelProblem("", "gpt-5")).toMatch(/provider/);
    expect(modelProblem("openai", "  ")).toMatch(/model/);
    expect(modelProblem("openai", "gpt 5")).toMatch(/at most 200/);
    expect(modelProblem("openai", "x".repeat(201))).toMatch(/at most 200/);
    expect(modelProblem("workers-ai", "@cf/qwen/qwen2.5-coder-32b-instruct")).toBeNull();
    expect(modelProblem("custom", "qwen2.5-coder:7b")).toBeNull();
  });
});
