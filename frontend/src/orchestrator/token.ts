// What the web app authenticates to the hub with. The page never holds its access token: the
// session token lives in the HttpOnly session cookie, which the browser sends with the WebSocket
// upgrade exactly as it does for the agent's socket. The hub's Worker route confirms that
// session (and the Origin) at the upgrade, and an `authenticate` whose token is empty means
// "the session of my upgrade". Clients without the cookie (the VS Code extension, scripts) send
// their bearer token instead.
export async function hubToken(): Promise<string> {
  return "";
}
