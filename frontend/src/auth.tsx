// Who is signed in: loaded once from /api/auth/me (401 means nobody), kept in context; the CSRF
// token of the session goes to the API client.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, setCsrf, SIGNED_OUT_EVENT } from "./api/client";
import { ApiError } from "./api/errors";
import type { User } from "./api/types";

interface Auth {
  user: User | null;
  loading: boolean;
  signIn: (email: string, password: string) => Promise<void>;
  signUp: (email: string, password: string, displayName?: string) => Promise<void>;
  signOut: () => Promise<void>;
}

const Ctx = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  const [loading, setLoading] = useState(true);

  useEffect(() => {
    api.me()
      .then((r) => { setCsrf(r.csrfToken); setUser(r.user); })
      .catch((e: unknown) => { if (!(e instanceof ApiError) || e.code !== "E001") console.warn(e); })
      .finally(() => setLoading(false));
  }, []);

  useEffect(() => {
    const gone = () => { setCsrf(null); setUser(null); };
    window.addEventListener(SIGNED_OUT_EVENT, gone);
    return () => window.removeEventListener(SIGNED_OUT_EVENT, gone);
  }, []);

  const signIn = useCallback(async (email: string, password: string) => {
    const r = await api.login(email, password);
    setCsrf(r.csrfToken);
    setUser(r.user);
  }, []);
  const signUp = useCallback(async (email: string, password: string, displayName?: string) => {
    const r = await api.register(email, password, displayName);
    setCsrf(r.csrfToken);
    setUser(r.user);
  }, []);
  const signOut = useCallback(async () => {
    try { await api.logout(); } finally { setCsrf(null); setUser(null); }
  }, []);

  const value = useMemo(() => ({ user, loading, signIn, signUp, signOut }), [user, loading, signIn, signUp, signOut]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useAuth(): Auth {
  const a = useContext(Ctx);
  if (!a) throw new Error("useAuth outside AuthProvider");
  return a;
}
