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
  /** Reads the signed-in user again (after a verification, say). */
  refresh: () => Promise<void>;
  /** Forgets the user locally (the server has ended the session, e.g. the account is deleted). */
  forget: () => void;
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

  const refresh = useCallback(async () => {
    try {
      const r = await api.me();
      setCsrf(r.csrfToken);
      setUser(r.user);
    } catch (e) {
      if (e instanceof ApiError && e.code === "E001") { setCsrf(null); setUser(null); } else throw e;
    }
  }, []);
  const forget = useCallback(() => { setCsrf(null); setUser(null); }, []);

  const value = useMemo(
    () => ({ user, loading, signIn, signUp, signOut, refresh, forget }),
    [user, loading, signIn, signUp, signOut, refresh, forget],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useAuth(): Auth {
  const a = useContext(Ctx);
  if (!a) throw new Error("useAuth outside AuthProvider");
  return a;
}
