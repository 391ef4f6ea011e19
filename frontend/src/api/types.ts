// The API's shapes, written by hand from README "API so far" and the Rust serializers
// (src/services/db.rs UserRow::to_json, src/domain/apps.rs AppSummary/AppDetail, src/routes/ai.rs).
// Seam: when `/api/openapi.json` lands, generate `schema.d.ts` from it and re-export the same
// names from here (every screen imports from this file only).

export type ErrorCode = "E000" | "E001" | "E002" | "E003" | "E004" | "E005" | "E006" | "E007";

export interface ErrorBody {
  error: { code: ErrorCode; message: string; fields?: Record<string, string> };
}

export interface User {
  id: string;
  email: string;
  displayName: string;
  avatarUrl: string | null;
  provider: string;
  role: "user" | "admin";
  createdAt: string | null;
  lastLogin: string | null;
  /** Whether the account's address is proved (password accounts verify through a mailed link). */
  emailVerified?: boolean;
  /** A new address waiting for its verification link. */
  pendingEmail?: string | null;
}

export interface AuthResponse {
  token: string;
  csrfToken: string;
  expiresIn?: number;
  user: User;
}

export interface MeResponse {
  user: User;
  csrfToken: string;
}

export interface Providers {
  password: boolean;
  google: boolean;
  github: boolean;
}

export type Visibility = "public" | "private";

export interface AppSummary {
  id: string;
  title: string;
  description: string | null;
  visibility: Visibility;
  tags: string[] | unknown;
  isDeployed: boolean;
  deployUrl: string | null;
  userId: string | null;
  createdAt: string | null;
  updatedAt: string | null;
}

export interface AppDetail extends AppSummary {
  files: unknown;
  config: unknown;
  containerState: unknown;
  isOwner: boolean;
}

export type Sort = "date" | "name" | "updated";
export type VisibilityFilter = Visibility | "all";

export interface ListQuery {
  search?: string;
  sort?: Sort;
  visibility?: VisibilityFilter;
  page?: number;
  limit?: number;
}

export interface AppList {
  apps: AppSummary[];
  total: number;
  page: number;
  limit: number;
  totalPages: number;
}

export interface NewApp {
  title: string;
  description?: string;
  visibility?: Visibility;
  tags?: string[];
  config?: Record<string, unknown>;
}

export interface Template {
  name: string;
  description: string;
  frameworks: string[];
}

export interface ProviderKey {
  provider: string;
  hint: string;
  createdAt: string | null;
  updatedAt: string | null;
}

export interface ModelChoice {
  provider?: string;
  model?: string;
  temperature?: number;
  maxTokens?: number;
}

export interface OperationModels {
  primary: ModelChoice & Record<string, unknown>;
  fallback: (ModelChoice & Record<string, unknown>) | null;
  override: (ModelChoice & Record<string, unknown>) | null;
  overrideError?: Record<string, string>;
}

export interface ModelsResponse {
  operations: Record<string, OperationModels>;
  providers: { provider: string; platformKey: boolean; userKey: boolean }[];
  gateway: boolean;
  customBaseUrl: boolean;
}

export interface UsageRow {
  operation: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface UsageResponse {
  windowHours: number;
  operations: UsageRow[];
  total: Omit<UsageRow, "operation">;
}

export interface AppUsageRow extends UsageRow {
  cachedTokens: number;
}

export interface AppUsageResponse {
  appId: string;
  operations: AppUsageRow[];
  total: Omit<AppUsageRow, "operation">;
}

export interface SandboxError {
  file: string;
  line: number;
  column: number;
  message: string;
  kind: string;
}

export interface VersionSummary {
  version: number;
  label: string | null;
  createdAt: number | null;
  files: number | null;
}
