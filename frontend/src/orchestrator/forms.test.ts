import { describe, expect, it } from "vitest";
import { projectProblems } from "../pages/Projects";
import { parseHours } from "../pages/TicketPage";
import { parseHubMessage } from "./model";

describe("the new-project form", () => {
  it("asks for what each source needs, per field", () => {
    expect(projectProblems({ source: "app" })).toEqual({ appId: "Choose one of your apps." });
    expect(projectProblems({ source: "app", appId: "a1" })).toEqual({});
    expect(projectProblems({ source: "github" }).githubUrl).toMatch(/address/);
    expect(projectProblems({ source: "github", githubUrl: "https://gitlab.com/o/r" }).githubUrl).toMatch(/github\.com\/owner\/repo/);
    expect(projectProblems({ source: "github", githubUrl: "https://github.com/owner" }).githubUrl).toBeDefined();
    expect(projectProblems({ source: "github", githubUrl: "https://github.com/byte-dev/shop.web" })).toEqual({});
    expect(projectProblems({ source: "new" })).toEqual({ title: "A new project needs a title." });
    expect(projectProblems({ source: "new", title: "x".repeat(201) }).title).toMatch(/200/);
    expect(projectProblems({ source: "new", title: "Shop", description: "d".repeat(1001) })).toEqual({ description: "At most 1000 characters." });
  });
});

describe("the hours fields", () => {
  it("read empty as none and refuse what is not a whole number of hours", () => {
    expect(parseHours("")).toBeNull();
    expect(parseHours(" 3 ")).toBe(3);
    expect(parseHours("2.5")).toBe("invalid");
    expect(parseHours("0")).toBe(0);
    expect(parseHours("-1")).toBe("invalid");
    expect(parseHours("two")).toBe("invalid");
    expect(parseHours("10001")).toBe("invalid");
  });
});

describe("hub frames", () => {
  it("parse the protocol's messages only", () => {
    expect(parseHubMessage('{"type":"heartbeat","timestamp":"t"}')).toEqual({ type: "heartbeat", timestamp: "t" });
    expect(parseHubMessage('{"type":"subscribe","projectId":"p"}')).toBeNull();
    expect(parseHubMessage("[1]")).toBeNull();
    expect(parseHubMessage("null")).toBeNull();
    expect(parseHubMessage("{")).toBeNull();
  });
});
