/* report_html.c: the report as one HTML page (offboard plan|reconcile
 * --format html) that needs nothing but a browser: no network, no other file.
 *
 * The page carries the JSON report itself, byte for byte the document
 * --format json prints but for '<', '>' and '&', written as \u003c, \u003e
 * and \u0026 (the same JSON: the same strings once parsed), inside
 * <script type="application/json" id="report">. Without a '<' nothing in it
 * can end that element or open another, whatever the directory holds. A
 * script of the page's own draws it: a summary, a section per account (what
 * needs a person first; drawn when shown, 500 at a time, so that a page of
 * many thousands stays quick), filters by status, transition and result with
 * their counts. It puts every value in the page as text (textContent), never
 * as markup, and shows control and bidi characters as \uXXXX, as the text
 * report does.
 *
 * The page streams like the JSON report: its head, then the accounts as the
 * pass goes, then the script; nothing is held back.
 *
 * The Content-Security-Policy allows no source at all but the page's style
 * and script, named by their SHA-256: change either and change its hash in
 * HTML_CSP, or the browser runs neither (tests/integration/test_html.c then
 * fails, and Chromium's message in its output gives the hash it wants). With
 * the URL's fragment #selftest the script also tries each filter value and
 * writes what it saw into <pre id="selftest"> for that test.
 */
#define _GNU_SOURCE /* fopencookie */
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#define HTML_CSP                                                                                                       \
        "default-src 'none'; "                                                                                         \
        "script-src 'sha256-cWOJfGhxbXf1Ets8K/n7rAL3uH387dYRKVMrCtpfBRI='; "                                           \
        "style-src 'sha256-fs6Y8Ueg/Z3d85Fvqx+RHf/+KhXqsvoZiiiMF/RnQiY='; "                                            \
        "base-uri 'none'; form-action 'none'"

static const char html_head[] =
        "<!DOCTYPE html>\n"
        "<html lang=\"en\">\n"
        "<head>\n"
        "<meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"" HTML_CSP "\">\n"
        "<meta name=\"referrer\" content=\"no-referrer\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<title>offboard report</title>\n"
        "<style>"
        "body { font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; color: #222; background: #fff; }\n"
        "h1 { font-size: 1.4em; }\n"
        "h2 { font-size: 1.1em; margin: 0.2em 0; }\n"
        "dl { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; margin: 0.4em 0; }\n"
        "dt { color: #555; }\n"
        "dd { margin: 0; overflow-wrap: anywhere; }\n"
        "#filters { position: sticky; top: 0; background: #f4f4f4; padding: 0.5em; border: 1px solid #ccc; }\n"
        "#filters label { margin-right: 1em; }\n"
        "#shown { font-weight: bold; }\n"
        ".account { border: 1px solid #ccc; border-radius: 4px; padding: 0.5em 1em; margin: 0.8em 0; }\n"
        ".name { margin-right: 0.6em; overflow-wrap: anywhere; }\n"
        ".tag { font-size: 0.8em; font-weight: normal; border: 1px solid #999; border-radius: 1em;\n"
        "  padding: 0 0.6em; margin-right: 0.3em; }\n"
        "table { border-collapse: collapse; width: 100%; }\n"
        "th, td { border: 1px solid #ddd; padding: 0.2em 0.4em; text-align: left; vertical-align: top; }\n"
        "pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.9em; }\n"
        "tr.bad td { background: #fdecea; }\n"
        "#more { margin: 0.5em 0 2em; }\n"
        "[hidden] { display: none !important; }\n"
        "</style>\n"
        "</head>\n"
        "<body>\n"
        "<h1 id=\"title\">offboard report</h1>\n"
        "<noscript><p>This page draws the report with its script, which is off. The report is the JSON "
        "document at the end of this file, as offboard --format json prints it.</p></noscript>\n"
        "<dl id=\"summary\"></dl>\n"
        "<div id=\"unreadable\"></div>\n"
        "<div id=\"filters\">\n"
        "<label>Status <select id=\"f-status\"></select></label>\n"
        "<label>Transition <select id=\"f-transition\"></select></label>\n"
        "<label>Result <select id=\"f-result\"></select></label>\n"
        "<output id=\"shown\"></output>\n"
        "</div>\n"
        "<main id=\"accounts\"></main>\n"
        "<button type=\"button\" id=\"more\" hidden></button>\n"
        "<pre id=\"selftest\" hidden></pre>\n"
        "<script type=\"application/json\" id=\"report\">";

static const char html_tail[] =
        "</script>\n"
        "<script>"
        "'use strict';\n"
        "(function () {\n"
        "var d = document;\n"
        "function byId(id) { return d.getElementById(id); }\n"
        "/* Controls, bidi marks and line separators as \\uXXXX, as the text report\n"
        "   shows them: a value from the directory cannot hide or reorder its\n"
        "   neighbours. Every value reaches the page as text (textContent), never\n"
        "   as markup. */\n"
        "var unseen = new RegExp('[\\\\u0000-\\\\u001f\\\\u007f-\\\\u009f\\\\u061c' +\n"
        "  '\\\\u200b-\\\\u200f\\\\u202a-\\\\u202e\\\\u2060-\\\\u2069\\\\u2028\\\\u2029\\\\ufeff]', 'g');\n"
        "function show(v) {\n"
        "  if (v === null || v === undefined) return '';\n"
        "  return String(v).replace(unseen, function (c) {\n"
        "    return '\\\\u' + ('000' + c.charCodeAt(0).toString(16)).slice(-4);\n"
        "  });\n"
        "}\n"
        "function el(tag, cls, text) {\n"
        "  var e = d.createElement(tag);\n"
        "  if (cls) e.className = cls;\n"
        "  if (text !== undefined) e.textContent = show(text);\n"
        "  return e;\n"
        "}\n"
        "function add(parent, child) { parent.appendChild(child); return child; }\n"
        "function row(dl, key, value) {\n"
        "  if (value === null || value === undefined || value === '') return;\n"
        "  add(dl, el('dt', '', key));\n"
        "  add(dl, el('dd', '', value));\n"
        "}\n"
        "function has(o, k) { return Object.prototype.hasOwnProperty.call(o, k); }\n"
        "\n"
        "var data;\n"
        "try {\n"
        "  data = JSON.parse(byId('report').textContent);\n"
        "} catch (e) {\n"
        "  byId('title').textContent = 'offboard report: the data in this file cannot be read';\n"
        "  throw e;\n"
        "}\n"
        "var sum = data.summary;\n"
        "var title = 'offboard ' + show(data.kind) + ', ' + show(data.time);\n"
        "d.title = title;\n"
        "byId('title').textContent = title;\n"
        "\n"
        "/* The summary: every member, as offboard --format json has it. */\n"
        "var dl = byId('summary');\n"
        "Object.keys(sum).forEach(function (k) {\n"
        "  var v = sum[k];\n"
        "  if (v === null || v === undefined) return;\n"
        "  if (Array.isArray(v)) v = v.join(', ');\n"
        "  else if (typeof v === 'object')\n"
        "    v = Object.keys(v).map(function (t) { return t + ' ' + v[t]; }).join(', ');\n"
        "  row(dl, k.replace(/_/g, ' '), String(v));\n"
        "});\n"
        "if (data.unreadable_accounts.length) {\n"
        "  var box = byId('unreadable');\n"
        "  add(box, el('h2', '', 'Could not be judged, held (never taken for deleted or active)'));\n"
        "  var ul = add(box, el('ul'));\n"
        "  data.unreadable_accounts.forEach(function (u) {\n"
        "    add(ul, el('li', '', u.dn + ': ' + u.reason));\n"
        "  });\n"
        "}\n"
        "\n"
        "/* What became of an account's owed actions, the worst first. */\n"
        "var rank = ['', 'done', data.kind === 'plan' ? 'would run' : 'not run', 'held', 'interrupted',\n"
        "  'failed'];\n"
        "function result(a) {\n"
        "  if (sum.adopt) return 'adopted';\n"
        "  var worst = 0;\n"
        "  a.actions.forEach(function (x) {\n"
        "    if (!has(x, 'request')) return;\n"
        "    var r = 1;\n"
        "    if (x.state === 'failed' || x.state === 'blocked') r = 5;\n"
        "    else if (x.state === 'interrupted') r = 4;\n"
        "    else if (x.state === 'held' || (x.state === 'owed' && x.hold_reason)) r = 3;\n"
        "    else if (x.state === 'owed') r = 2;\n"
        "    if (r > worst) worst = r;\n"
        "  });\n"
        "  if (a.writeback_result === 'failed') worst = 5;\n"
        "  if (worst) return rank[worst];\n"
        "  return a.writeback ? 'write-back only' : 'nothing owed';\n"
        "}\n"
        "\n"
        "/* A request as its connector kind describes it, members without a value\n"
        "   left out. */\n"
        "function request(req) {\n"
        "  return Object.keys(req).filter(function (k) {\n"
        "    var v = req[k];\n"
        "    return v !== null && v !== '' && !(Array.isArray(v) && !v.length);\n"
        "  }).map(function (k) {\n"
        "    var v = req[k];\n"
        "    if (Array.isArray(v)) v = v.join(', ');\n"
        "    else if (typeof v === 'object') v = JSON.stringify(v);\n"
        "    return show(k) + ': ' + show(v);\n"
        "  }).join('\\n');\n"
        "}\n"
        "\n"
        "function account(a, key) {\n"
        "  var s = el('section', 'account');\n"
        "  var h = add(s, el('h2'));\n"
        "  add(h, el('span', 'name', a.username !== null ? a.username : a.id));\n"
        "  dims.forEach(function (k) { add(h, el('span', 'tag', key[k])); });\n"
        "  var dl = add(s, el('dl'));\n"
        "  row(dl, 'DN', a.dn);\n"
        "  row(dl, 'id', a.id);\n"
        "  row(dl, 'status', a.status +\n"
        "      (a.rule !== null ? ' (rule ' + a.rule + ', ' + a.rule_source + ')' : ' (no rule matched)') +\n"
        "      (a.reason !== null ? ', reason: ' + a.reason : ''));\n"
        "  row(dl, 'recorded', a.recorded_status);\n"
        "  if (a.transition !== null)\n"
        "    row(dl, 'transition', a.transition + ' (' + a.from + ' -> ' + a.status + ', generation ' +\n"
        "        a.generation + (a.continuing ? ', continuing' : '') + ')');\n"
        "  if (a.transfer_to)\n"
        "    row(dl, 'transfer', (a.transfer_to.username !== null ? a.transfer_to.username : '?') +\n"
        "        ' (' + a.transfer_to.dn + ') via ' + a.transfer_to.via);\n"
        "  a.guards.forEach(function (g) {\n"
        "    row(dl, 'guard', g.name + ': ' + (g.reason !== null ? g.reason : '') +\n"
        "        (g.block ? '' : ' (warning only)'));\n"
        "  });\n"
        "  row(dl, 'blocked', a.blocked);\n"
        "  if (a.not_restored.length) row(dl, 'not restored', a.not_restored.join(', '));\n"
        "  if (a.writeback)\n"
        "    row(dl, 'write-back',\n"
        "        has(a, 'writeback_result') ? a.writeback_result : 'status attributes will be written');\n"
        "  if (a.actions.length) {\n"
        "    var t = add(s, el('table'));\n"
        "    var tr = add(add(t, el('thead')), el('tr'));\n"
        "    ['#', 'action', 'connector', 'state', 'request', 'detail'].forEach(function (c) {\n"
        "      add(tr, el('th', '', c));\n"
        "    });\n"
        "    var tb = add(t, el('tbody'));\n"
        "    a.actions.forEach(function (x, i) {\n"
        "      var r = add(tb, el('tr', x.state === 'failed' || x.state === 'blocked' ? 'bad' : ''));\n"
        "      add(r, el('td', '', String(i + 1)));\n"
        "      add(r, el('td', '', x.name + (x.security ? ' (security)' : '')));\n"
        "      add(r, el('td', '', x.connector));\n"
        "      add(r, el('td', '', x.state));\n"
        "      var q = add(add(r, el('td')), el('pre'));\n"
        "      q.textContent = has(x, 'request') ? request(x.request) : '';\n"
        "      var more = [];\n"
        "      if (x.after.length) more.push('after ' + x.after.join(', '));\n"
        "      if (x.attempts) more.push('attempts ' + x.attempts);\n"
        "      if (x.nothing_to_transfer) more.push('nothing to transfer: every module is none');\n"
        "      if (has(x, 'modules')) x.modules.forEach(function (m) { more.push(moduleText(m)); });\n"
        "      if (x.hold_reason) more.push('held: ' + x.hold_reason);\n"
        "      if (x.due) more.push('due ' + x.due);\n"
        "      if (x.error) more.push('error: ' + x.error);\n"
        "      if (x.http_status) more.push('HTTP ' + x.http_status);\n"
        "      if (has(x, 'duration_ms')) more.push(x.duration_ms + ' ms');\n"
        "      var m = add(add(r, el('td')), el('pre'));\n"
        "      m.textContent = more.map(show).join('\\n');\n"
        "    });\n"
        "  }\n"
        "  return s;\n"
        "}\n"
        "\n"
        "/* One module of a transfer (seed 000): all, none, or which records. */\n"
        "function moduleText(m) {\n"
        "  function crit(c) {\n"
        "    return Object.keys(c).map(function (k) { return k + ' is ' + [].concat(c[k]).join(' or '); })\n"
        "      .join(' and ');\n"
        "  }\n"
        "  var t = m.records;\n"
        "  if (m.records === 'none' && m.when_false) t = 'none (its when: is false)';\n"
        "  if (m.records === 'matching')\n"
        "    t = has(m, 'is') ? 'where ' + crit(m.is) : 'except where ' + crit(m.is_not);\n"
        "  return 'module ' + m.module + ': ' + t;\n"
        "}\n"
        "\n"
        "/* The accounts, what needs a person first (failed, interrupted, held),\n"
        "   by name within a result. Each is drawn when first shown, PAGE at a time,\n"
        "   so that a report of many thousands stays quick. */\n"
        "var PAGE = 500;\n"
        "var dims = ['status', 'transition', 'result'];\n"
        "var order = { 'failed': 0, 'interrupted': 1, 'held': 2, 'would run': 3, 'not run': 3, 'done': 4,\n"
        "  'adopted': 4, 'write-back only': 5, 'nothing owed': 6 };\n"
        "var counts = { status: {}, transition: {}, result: {} };\n"
        "var all = data.accounts.map(function (a) {\n"
        "  var key = {\n"
        "    status: a.status,\n"
        "    transition: a.transition !== null ? a.transition : '(none)',\n"
        "    result: result(a)\n"
        "  };\n"
        "  dims.forEach(function (k) { counts[k][key[k]] = (counts[k][key[k]] || 0) + 1; });\n"
        "  return { a: a, key: key, name: String(a.username !== null ? a.username : a.id), section: null };\n"
        "});\n"
        "all.sort(function (x, y) {\n"
        "  return order[x.key.result] - order[y.key.result] || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0);\n"
        "});\n"
        "var list = byId('accounts'), more = byId('more'), matching = [], drawn = 0;\n"
        "function draw(n) {\n"
        "  var frag = d.createDocumentFragment();\n"
        "  var end = Math.min(matching.length, drawn + n);\n"
        "  for (; drawn < end; drawn++) {\n"
        "    var x = matching[drawn];\n"
        "    if (!x.section) x.section = account(x.a, x.key);\n"
        "    add(frag, x.section);\n"
        "  }\n"
        "  add(list, frag);\n"
        "  var left = matching.length - drawn;\n"
        "  more.hidden = !left;\n"
        "  more.textContent = 'Show ' + Math.min(PAGE, left) + ' more (' + left + ' not shown)';\n"
        "  byId('shown').textContent = matching.length + ' of ' + all.length + ' accounts' +\n"
        "    (left ? ', the first ' + drawn + ' shown' : ' shown');\n"
        "}\n"
        "function select(k) { return byId('f-' + k); }\n"
        "function apply() {\n"
        "  var want = dims.map(function (k) { return select(k).value; });\n"
        "  matching = all.filter(function (x) {\n"
        "    return dims.every(function (k, i) { return want[i] === '' || x.key[k] === want[i]; });\n"
        "  });\n"
        "  list.textContent = '';\n"
        "  drawn = 0;\n"
        "  draw(PAGE);\n"
        "}\n"
        "more.addEventListener('click', function () { draw(PAGE); });\n"
        "dims.forEach(function (k) {\n"
        "  var sel = select(k);\n"
        "  add(sel, el('option', '', 'all (' + all.length + ')')).value = '';\n"
        "  Object.keys(counts[k]).sort().forEach(function (v) {\n"
        "    add(sel, el('option', '', v + ' (' + counts[k][v] + ')')).value = v;\n"
        "  });\n"
        "  sel.addEventListener('change', apply);\n"
        "});\n"
        "apply();\n"
        "\n"
        "/* #selftest: each filter value in turn, as a person would pick it, and\n"
        "   the sections then visible; for tests/integration/test_html.c. */\n"
        "if (location.hash === '#selftest') {\n"
        "  var out = [];\n"
        "  var pick = function (k, v) {\n"
        "    var sel = select(k);\n"
        "    sel.value = v;\n"
        "    sel.dispatchEvent(new Event('change'));\n"
        "  };\n"
        "  var visible = function () {\n"
        "    return d.querySelectorAll('#accounts > section').length;\n"
        "  };\n"
        "  var clear = function () { dims.forEach(function (k) { pick(k, ''); }); };\n"
        "  dims.forEach(function (k) {\n"
        "    Object.keys(counts[k]).sort().forEach(function (v) {\n"
        "      clear();\n"
        "      pick(k, v);\n"
        "      out.push(k + '=' + v + ':' + visible());\n"
        "    });\n"
        "  });\n"
        "  Object.keys(counts.status).sort().forEach(function (sv) {\n"
        "    Object.keys(counts.transition).sort().forEach(function (tv) {\n"
        "      clear();\n"
        "      pick('status', sv);\n"
        "      pick('transition', tv);\n"
        "      out.push('status=' + sv + ',transition=' + tv + ':' + visible());\n"
        "    });\n"
        "  });\n"
        "  clear();\n"
        "  out.push('all:' + visible());\n"
        "  /* Drawn a page at a time: two, then two more. */\n"
        "  PAGE = 2;\n"
        "  clear();\n"
        "  var paged = [visible()];\n"
        "  more.click();\n"
        "  paged.push(visible());\n"
        "  PAGE = 500;\n"
        "  clear();\n"
        "  out.push('paged:' + paged.join(','));\n"
        "  var p = byId('selftest');\n"
        "  p.textContent = out.join('\\n');\n"
        "  p.hidden = false;\n"
        "}\n"
        "})();\n"
        "</script>\n"
        "</body>\n"
        "</html>\n";

/* When the JSON cannot be written into the page: a whole page that says so. */
static const char html_failed[] =
        "<!DOCTYPE html>\n"
        "<html lang=\"en\">\n"
        "<head>\n"
        "<meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\">\n"
        "<title>offboard report</title>\n"
        "</head>\n"
        "<body>\n"
        "<p>offboard could not write this report (out of memory): run it again, or use --format json.</p>\n"
        "</body>\n"
        "</html>\n";

/* The JSON on its way into the page: out is the cookie. '<', '>' and '&'
 * only ever stand inside a JSON string, where \u003c is the same '<'. */
static ssize_t html_json_write(void *cookie, const char *buf, size_t n)
{
        FILE *out = cookie;
        size_t start = 0;
        for (size_t i = 0; i < n; i++) {
                const char *esc = buf[i] == '<'   ? "\\u003c"
                                  : buf[i] == '>' ? "\\u003e"
                                  : buf[i] == '&' ? "\\u0026"
                                                  : NULL;
                if (!esc)
                        continue;
                if (fwrite(buf + start, 1, i - start, out) != i - start || fputs(esc, out) == EOF)
                        return -1;
                start = i + 1;
        }
        if (fwrite(buf + start, 1, n - start, out) != n - start)
                return -1;
        return (ssize_t)n;
}

FILE *ob_report_html_begin(FILE *out)
{
        FILE *json = fopencookie(out, "w", (cookie_io_functions_t){.write = html_json_write});
        if (!json) {
                int e = errno;
                fputs(html_failed, out);
                errno = e;
                return NULL;
        }
        fputs(html_head, out);
        return json;
}

void ob_report_html_end(FILE *json, FILE *out)
{
        if (!json)
                return;
        fclose(json); /* a write that failed leaves out's error flag set */
        fputs(html_tail, out);
}
