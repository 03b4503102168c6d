// server.mjs: an in-memory OAuth 2.0 authorization server for offboard's
// tests, oidc-provider 9 with client_credentials, introspection (RFC 7662)
// and revocation (RFC 7009) at its default routes. Only for loopback tests.
//
//   node server.mjs PORTFILE SECRET
//
// Listens on 127.0.0.1 on a free port and writes it to PORTFILE; the issuer
// is http://127.0.0.1:PORT. Two confidential clients, both
// client_credentials and refresh_token, with client_secret_basic
// (oidc-provider's default):
//   offboard-test      secret SECRET
//   offboard-reserved  secret SECRET + "+/%26&=:", characters RFC 6749
//                      section 2.3.1 has form-encoded before HTTP Basic
//                      (sent as written, they decode to another secret)
// oidc-provider lets a client revoke and introspect only the tokens issued
// to it (the default allowedPolicy). Test controls (no auth):
//   POST /_test/user_tokens?account=ID: a grant of ID to offboard-test with
//       a refresh token and an access token of it, as an authorization
//       code flow would leave them: {"refresh_token", "access_token"}
//   GET /_test/log: every request so far but those to /token and
//       /token/introspection (the test's own), as JSON lines {method,
//       path, content_type, authorization (the Basic credentials as
//       sent, before oidc-provider form-decodes them, the secret replaced
//       by its length), client_id (the client oidc-provider found, or
//       null), token, token_type_hint (the form parameters as it read
//       them), status, error, error_description}
// It stops by itself when the process named by OB_WATCH_PID is gone, and
// after OB_MAX_LIFETIME_S seconds (default 600), so a crashed test leaves
// nothing behind.
import { createServer } from "node:http";
import { renameSync, writeFileSync } from "node:fs";
import Provider from "oidc-provider";

const [portFile, secret] = process.argv.slice(2);
if (!portFile || !secret) {
        console.error("usage: node server.mjs PORTFILE SECRET");
        process.exit(2);
}

const client = (id, sec) => ({
        client_id: id,
        client_secret: sec,
        grant_types: ["client_credentials", "refresh_token"],
        redirect_uris: [],
        response_types: [],
});

const log = [];

function basicOf(header) {
        const m = /^Basic\s+(.*)$/i.exec(header ?? "");
        if (!m) return null;
        const s = Buffer.from(m[1], "base64").toString("utf8");
        const i = s.indexOf(":");
        return i < 0 ? {id: s, secret_length: null} : {id: s.slice(0, i), secret_length: s.length - i - 1};
}

// What an authorization code flow leaves for account at offboard-test: a
// grant, a refresh token and an access token of it (minted through
// oidc-provider's own models, as its token endpoint would).
async function userTokens(provider, account) {
        if (!account) throw new Error("account= is required");
        const client = await provider.Client.find("offboard-test");
        const grant = new provider.Grant({accountId: account, clientId: client.clientId});
        grant.addOIDCScope("openid offline_access");
        const grantId = await grant.save();
        const common = {accountId: account, client, grantId, gty: "authorization_code", scope: "openid offline_access"};
        const refresh = new provider.RefreshToken(common);
        const access = new provider.AccessToken({...common, scope: "openid"});
        return {refresh_token: await refresh.save(), access_token: await access.save()};
}

const server = createServer();
server.listen(0, "127.0.0.1", () => {
        const port = server.address().port;
        const provider = new Provider(`http://127.0.0.1:${port}`, {
                clients: [client("offboard-test", secret), client("offboard-reserved", `${secret}+/%26&=:`)],
                features: {
                        clientCredentials: {enabled: true},
                        introspection: {enabled: true},
                        revocation: {enabled: true},
                        devInteractions: {enabled: false},
                },
        });
        provider.use(async (ctx, next) => {
                if (ctx.path === "/_test/user_tokens" && ctx.method === "POST") {
                        ctx.body = await userTokens(provider, ctx.query.account);
                        return;
                }
                if (ctx.path === "/_test/log" && ctx.method === "GET") {
                        ctx.type = "text/plain";
                        ctx.body = log.map((e) => JSON.stringify(e) + "\n").join("");
                        return;
                }
                if (ctx.path === "/token" || ctx.path === "/token/introspection") return next();
                await next();
                const body = typeof ctx.body === "object" && ctx.body ? ctx.body : {};
                log.push({
                        method: ctx.method,
                        path: ctx.path,
                        content_type: ctx.get("content-type"),
                        authorization: basicOf(ctx.get("authorization")),
                        client_id: ctx.oidc?.client?.clientId ?? null,
                        token: ctx.oidc?.params?.token ?? null,
                        token_type_hint: ctx.oidc?.params?.token_type_hint ?? null,
                        status: ctx.status,
                        error: body.error ?? null,
                        error_description: body.error_description ?? null,
                });
        });
        const tmp = `${portFile}.tmp`;
        writeFileSync(tmp, `${port}\n`);
        renameSync(tmp, portFile);
        server.on("request", provider.callback());
});

function stop() {
        server.close(() => process.exit(0));
        setTimeout(() => process.exit(0), 500).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
const watch = Number(process.env.OB_WATCH_PID ?? 0);
if (watch > 0)
        setInterval(() => {
                try { process.kill(watch, 0); } catch { stop(); }
        }, 500).unref();
setTimeout(stop, Number(process.env.OB_MAX_LIFETIME_S ?? 600) * 1000).unref();
