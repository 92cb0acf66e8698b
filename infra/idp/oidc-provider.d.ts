/**
 * The slice of `oidc-provider` 9 the development identity provider uses. The package ships no
 * types; this keeps our calls checked without pulling in a third-party type package.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface InteractionDetails {
    uid: string;
    prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
    params: Record<string, unknown> & { client_id?: string };
    session?: { accountId?: string };
    lastSubmission?: Record<string, unknown>;
  }

  export interface LoginResult { accountId: string; acr?: string; amr?: string[]; remember?: boolean; ts?: number }
  export type InteractionResult = { login: LoginResult } | { error: string; error_description?: string };

  export interface GrantInstance {
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface ProviderContext {
    oidc: {
      client?: { clientId: string; clientName?: string };
      session?: { accountId?: string; grantIdFor(clientId: string): string | undefined };
      result?: { consent?: { grantId?: string } };
      params?: Record<string, unknown>;
      route?: string;
      entities: Record<string, { accountId?: string; amr?: string[]; acr?: string; clientId?: string } | undefined>;
      provider: Provider;
    };
    host: string;
    body: unknown;
    type: string;
    status: number;
  }

  export interface KoaLike { proxy: boolean }

  export class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    readonly issuer: string;
    readonly app: KoaLike;
    readonly Grant: {
      new (init: { clientId: string; accountId: string }): GrantInstance;
      find(id: string): Promise<GrantInstance | undefined>;
    };
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
    interactionFinished(req: IncomingMessage, res: ServerResponse, result: InteractionResult, opts?: { mergeWithLastSubmission?: boolean }): Promise<void>;
    on(event: string, listener: (...args: any[]) => void): this;
    /** Koa middleware around every provider request. */
    use(middleware: (ctx: { oidc?: { route?: string }; status: number }, next: () => Promise<void>) => Promise<void>): void;
  }

  export const errors: Record<string, new (description?: string) => Error> & {
    InvalidTarget: new (description?: string) => Error;
    SessionNotFound: new (description?: string) => Error;
  };

  export default Provider;
}
