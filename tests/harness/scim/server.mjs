// server.mjs: an in-memory SCIM 2.0 server for offboard's tests, built on
// scimmy (schemas, filters, PATCH, ListResponse) and scimmy-routers (the
// RFC 7644 endpoints on express). Only for loopback tests.
//
//   node server.mjs PORTFILE TOKEN
//
// Listens on 127.0.0.1 on a free port and writes it to PORTFILE. Requests
// under /scim/v2 need "Authorization: Bearer TOKEN". Test controls (no auth,
// outside /scim/v2):
//   POST /_test/throttle {"count": N, "retry_after": S}: the next N SCIM
//        requests get 429 with Retry-After: S
//   POST /_test/stale {"count": N}: the next N PATCH or DELETE requests
//        with If-Match find their resource changed just before (its
//        version goes up by one), as if someone else had written it
//   GET  /_test/log: every SCIM request so far as JSON lines
//        {method, url, if_match, body, time} (time: seconds since the epoch)
// A PATCH or DELETE with If-Match that is not the resource's meta.version
// gets 412, as RFC 7644 section 3.14 says.
//
// scimmy 1.3.5's filter lexer neither ends a string at an escaped quote nor
// unescapes it (`userName eq "a\"b"` is a syntax error, `"a\\b"` never
// matches a\b), so a filter of one `ATTR eq "JSON string"` is decoded here,
// as RFC 7644 section 3.4.2.2 defines it, and matched exactly (userName and
// displayName case-insensitively, RFC 7643), and so is one of
// `ATTR eq "JSON string" and members[value eq "JSON string"]` (a configured
// group, if it lists a user); anything else goes to scimmy.
// It stops by itself when the process named by OB_WATCH_PID is gone, and
// after OB_MAX_LIFETIME_S seconds (default 600), so a crashed test leaves
// nothing behind.
import express from "express";
import { writeFileSync, renameSync } from "node:fs";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const [portFile, token] = process.argv.slice(2);
if (!portFile || !token) {
        console.error("usage: node server.mjs PORTFILE TOKEN");
        process.exit(2);
}

const users = new Map(), groups = new Map();
let nextId = 1, throttle = {count: 0, retryAfter: 0}, stale = 0;
const log = [];
const newId = () => `${(nextId++).toString(16).padStart(8, "0")}-5c1e-4e00-8000-00000000aaaa`;
const etag = (r) => `W/"${r.version}"`;
const meta = (r, type) => ({resourceType: type, created: r.created, lastModified: r.modified, version: etag(r)});

function store(map, type, unique, resource, instance) {
        const old = resource.id ? map.get(resource.id) : undefined;
        if (resource.id && !old) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
        for (const [id, r] of map)
                if (id !== resource.id && String(r[unique]).toLowerCase() === String(instance[unique]).toLowerCase())
                        throw new SCIMMY.Types.Error(409, "uniqueness", `${unique} is not unique`);
        const now = new Date().toISOString();
        const id = old ? old.id : newId();
        const r = {...JSON.parse(JSON.stringify(instance)), id, created: old ? old.created : now, modified: now,
                   version: old ? old.version + 1 : 1};
        delete r.meta;
        delete r.schemas;
        if (type === "User" && r.active === undefined) r.active = true;
        map.set(id, r);
        return out(r, type);
}

function out(r, type) {
        const {created, modified, version, ...rest} = r;
        void created; void modified; void version;
        // scimmy's filter match throws on a group without members (1.3.5)
        if (type === "Group" && !rest.members) rest.members = [];
        if (type === "User")
                rest.groups = [...groups.values()].filter((g) => (g.members ?? []).some((m) => m.value === r.id))
                        .map((g) => ({value: g.id, display: g.displayName}));
        return {...rest, meta: meta(r, type)};
}

function fetch(map, type, resource, ctx) {
        if (resource.id) {
                const r = map.get(resource.id);
                if (!r) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
                return out(r, type);
        }
        const all = [...map.values()].map((r) => out(r, type));
        if (ctx?.exact) {
                const {attr, value} = ctx.exact;
                const fold = ["username", "displayname"].includes(attr.toLowerCase());
                const eq = (v) => typeof v === "string" && (fold ? v.toLowerCase() === value.toLowerCase() : v === value);
                const member = ctx.exact.member;
                return all.filter((r) => eq(Object.entries(r).find(([k]) => k.toLowerCase() === attr.toLowerCase())?.[1]) &&
                                  (member === undefined || (r.members ?? []).some((m) => m.value === member)));
        }
        return resource.filter ? resource.filter.match(all) : all;
}

function remove(map, resource) {
        if (!map.delete(resource.id)) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
        if (map === users)
                for (const g of groups.values())
                        g.members = (g.members ?? []).filter((m) => m.value !== resource.id);
}

SCIMMY.Resources.declare(SCIMMY.Resources.User)
        .ingress((resource, instance) => store(users, "User", "userName", resource, instance))
        .egress((resource, ctx) => fetch(users, "User", resource, ctx))
        .degress((resource) => remove(users, resource));
SCIMMY.Resources.declare(SCIMMY.Resources.Group)
        .ingress((resource, instance) => store(groups, "Group", "displayName", resource, instance))
        .egress((resource, ctx) => fetch(groups, "Group", resource, ctx))
        .degress((resource) => remove(groups, resource));

const app = express();
app.set("etag", false); // a resource's ETag is its meta.version, not a hash of the answer
app.post("/_test/throttle", express.json(), (req, res) => {
        throttle = {count: req.body.count ?? 1, retryAfter: req.body.retry_after ?? 1};
        res.json(throttle);
});
app.post("/_test/stale", express.json(), (req, res) => {
        stale = req.body.count ?? 1;
        res.json({stale});
});
app.get("/_test/log", (req, res) => res.type("text/plain").send(log.map((l) => JSON.stringify(l) + "\n").join("")));
app.use("/scim/v2", express.text({type: "*/*"}), (req, res, next) => {
        log.push({method: req.method, url: req.originalUrl, if_match: req.get("If-Match") ?? null,
                  body: typeof req.body === "string" ? req.body : "", time: Date.now() / 1000});
        // express.text consumed the stream; scimmy-routers reads req.body as JSON.
        if (typeof req.body === "string")
                req.body = req.body.length ? JSON.parse(req.body) : {};
        if (throttle.count > 0) {
                throttle.count--;
                res.set("Retry-After", String(throttle.retryAfter)).status(429).type("application/scim+json")
                        .send(JSON.stringify({schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"],
                                              status: "429", detail: "Too many requests"}));
                return;
        }
        const m = /^\/(Users|Groups)\/([^/?]+)$/.exec(req.path);
        const want = req.get("If-Match");
        if (m && want && (req.method === "PATCH" || req.method === "DELETE")) {
                const r = (m[1] === "Users" ? users : groups).get(decodeURIComponent(m[2]));
                if (r && stale > 0) {
                        stale--;
                        r.version++;
                }
                if (r && want !== "*" && want !== etag(r)) {
                        res.status(412).type("application/scim+json").send(JSON.stringify({
                                schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"], status: "412",
                                detail: "If-Match does not match the resource's version"}));
                        return;
                }
        }
        const str = String.raw`("(?:[^"\\]|\\.)*")`;
        const exact = new RegExp(String.raw`^\s*(\w+)\s+eq\s+${str}(?:\s+and\s+members\[\s*value\s+eq\s+${str}\s*\])?\s*$`, "i");
        const f = typeof req.query.filter === "string" && exact.exec(req.query.filter);
        if (f) {
                try {
                        req.exact = {attr: f[1], value: JSON.parse(f[2]), member: f[3] === undefined ? undefined : JSON.parse(f[3])};
                        delete req.query.filter;
                } catch {
                        // not a JSON string: scimmy answers it (with invalidFilter)
                }
        }
        next();
});
app.use("/scim/v2", new SCIMMYRouters({
        type: "bearer",
        context: (req) => ({exact: req.exact}),
        docUri: "https://example.org/scim-test",
        handler: (req) => {
                if (req.header("Authorization") !== `Bearer ${token}`) throw new Error("Authorization failed");
                return "offboard-test";
        },
}));

const server = app.listen(0, "127.0.0.1", () => {
        const tmp = `${portFile}.tmp`;
        writeFileSync(tmp, `${server.address().port}\n`);
        renameSync(tmp, portFile);
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
