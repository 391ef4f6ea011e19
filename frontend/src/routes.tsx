// The screens. Heavy ones (the workspace, with Monaco inside it) load on first visit.
import { createBrowserRouter } from "react-router";
import { Layout, RequireAuth } from "./components/Layout";
import { Home } from "./pages/Home";
import { SignIn } from "./pages/SignIn";
import { NotFound } from "./pages/NotFound";

export const router = createBrowserRouter([
  {
    element: <Layout />,
    children: [
      { path: "/signin", element: <SignIn mode="signin" /> },
      { path: "/signup", element: <SignIn mode="signup" /> },
      { path: "/verify-email", lazy: async () => { const m = await import("./pages/VerifyEmail"); return { element: <m.VerifyEmail /> }; } },
      { path: "/", element: <RequireAuth><Home /></RequireAuth> },
      { path: "/apps", lazy: async () => { const m = await import("./pages/MyApps"); return { element: <RequireAuth><m.MyApps /></RequireAuth> }; } },
      { path: "/apps/:id", lazy: async () => { const m = await import("./pages/Workspace"); return { element: <RequireAuth><m.Workspace /></RequireAuth> }; } },
      { path: "/discover", lazy: async () => { const m = await import("./pages/Discover"); return { element: <m.Discover /> }; } },
      { path: "/projects", lazy: async () => { const m = await import("./pages/Projects"); return { element: <RequireAuth><m.Projects /></RequireAuth> }; } },
      { path: "/projects/:id", lazy: async () => { const m = await import("./pages/Project"); return { element: <RequireAuth><m.ProjectPage /></RequireAuth> }; } },
      { path: "/projects/:projectId/tickets/:ticketId", lazy: async () => { const m = await import("./pages/TicketPage"); return { element: <RequireAuth><m.TicketPage /></RequireAuth> }; } },
      { path: "/admin", lazy: async () => { const m = await import("./pages/Admin"); return { element: <RequireAuth><m.Admin /></RequireAuth> }; } },
      { path: "/settings", lazy: async () => { const m = await import("./pages/Settings"); return { element: <RequireAuth><m.Settings /></RequireAuth> }; } },
      { path: "*", element: <NotFound /> },
    ],
  },
]);
