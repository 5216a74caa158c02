# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""report.html: one self-contained page (inline CSS and JS, nothing fetched) rendered with Jinja2, autoescaped.

The template is a Python string here, in module_utils, because that is what the collection's filters, its action
plugins and its tests can all import on the controller (a role's templates/ directory is not importable from a
plugin). Jinja2 is imported when a page is rendered, never when the module is imported: every controller has it (it
is ansible-core's own), and no module sent to a target imports this file.

At fleet scale (20,000 targets) the page stays usable: worst first, grouped by host, hosts and targets that are
clean (read in full, nothing above info) collapsed into counts, filters by severity, layer, host and finding id,
sortable columns, and the evidence of each finding above info behind a closed <details>.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

from typing import Any, Dict

PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Packet-loss diagnosis</title>
<style>
body{font:13px/1.35 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:.8em 1.2em;color:#222}
h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .3em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4;position:sticky;top:0}th.s{cursor:pointer;user-select:none}th.s:after{content:" \2195";color:#999}
td.c{text-align:center;font-size:12px;white-space:nowrap}td.c a{color:inherit;text-decoration:none}td.n{text-align:right}
.sev{display:inline-block;padding:0 5px;border-radius:3px;font-weight:600;font-size:12px}
.critical{background:#f9d0d0}.warning{background:#fff1c2}.info{background:#e3eefc}.clean{background:#e6f4ea}
.na,.partial{background:#eeeeee}.first td{border-top:2px solid #888}.sub{color:#999}
#filters{margin:.4em 0;padding:.3em .5em;background:#fafafa;border:1px solid #ddd}#filters label{margin-right:.7em}
details{border:1px solid #ddd;border-radius:4px;margin:.3em 0;padding:.2em .6em}summary{cursor:pointer}
code{background:#f4f4f4;padding:0 3px}.muted{color:#777}.hide{display:none}
</style></head><body>
<h1>Packet-loss diagnosis</h1>
<p id="totals">Generated {{ s.generated_at }} for {{ s.hosts }} host(s), {{ s.targets }} target(s):
<span class="sev critical">{{ s.counts.critical }} critical</span> <span class="sev warning">{{ s.counts.warning }} warning</span>
<span class="sev info">{{ s.counts.info }} info</span>{% if s.not_read %} <span class="sev na">{{ s.not_read }} layer(s) not read in full: not known to be clean</span>{% endif %};
{{ clean_hosts | length }} host(s) and {{ clean_targets }} target(s) clean (read in full, nothing above info), collapsed.</p>
<form id="filters" onsubmit="return false">
{% for sv in ("critical", "warning", "info", "na", "clean") %}<label><input type="checkbox" name="sev" value="{{ sv }}" checked> {{ "n/a, partial" if sv == "na" else sv }}</label>{% endfor %}
<label>layer <select name="layer"><option value="">any</option>{% for l in layers %}<option>{{ l }}</option>{% endfor %}</select></label>
<label>host <input name="host" size="14" placeholder="part of a name"></label>
<label>finding <select name="fid"><option value="">any</option>{% for i in ids %}<option>{{ i }}</option>{% endfor %}</select></label>
<span id="shown" class="muted"></span>
</form>
<table id="grid"><thead><tr><th class="s" data-t="t">host</th><th class="s" data-t="t">target</th><th class="s" data-t="n">worst</th>{% for l in layers %}<th class="s" data-t="n">{{ l }}</th>{% endfor %}<th class="s" data-t="n">findings</th><th class="s" data-t="n">probe loss</th></tr></thead>
<tbody>
{% for h in hosts %}{% for r in h.rows %}<tr class="{{ 'first' if loop.first else '' }}" data-host="{{ h.host }}" data-sev="{{ r.sev }}" data-layers="{{ r.layers }}" data-ids="{{ r.ids }}" data-g="{{ h.order }}"><td>{{ h.host }}</td><td>{{ r.target }}</td><td class="c {{ r.sev }}" data-k="{{ r.rank }}">{{ r.worst }}</td>
{% for c in r.cells %}{% if c %}<td class="c {{ c.cls }}" data-k="{{ c.rank }}"{% if c.title %} title="{{ c.title }}"{% endif %}>{% if c.href %}<a href="#{{ c.href }}">{{ c.text }}</a>{% else %}{{ c.text }}{% endif %}</td>{% else %}<td class="c clean" data-k="-2">.</td>{% endif %}{% endfor %}
<td class="n" data-k="{{ r.nfindings }}">{{ r.nfindings }}</td><td data-k="{{ r.loss }}">{{ r.probe }}</td></tr>
{% endfor %}{% if h.clean %}<tr data-host="{{ h.host }}" data-sev="clean" data-layers="" data-ids="" data-g="{{ h.order }}"><td>{{ h.host }}</td><td class="sub">{{ h.clean }} more target(s) clean</td><td class="c clean" data-k="-2">clean</td>{% for l in layers %}<td class="c clean" data-k="-2">.</td>{% endfor %}<td class="n" data-k="0"></td><td data-k="0"></td></tr>
{% endif %}{% endfor %}
</tbody></table>
{% if clean_hosts %}<details id="clean-hosts"><summary>{{ clean_hosts | length }} clean host(s), every target read in full without a finding above info</summary><p>{{ clean_hosts | join(", ") }}</p></details>{% endif %}
{% if probes %}<h2>Probes</h2><table><tr><th>from host</th><th>probe</th><th>target</th><th>sent</th><th>answered</th><th>loss %</th><th>rtt min / avg / max / p50 / p95 (ms)</th></tr>
{% for p in probes %}<tr><td>{{ p.host }}</td><td>{{ p.name }}</td><td>{{ p.target }}</td><td class="n">{{ p.sent }}</td><td class="n">{{ p.answered }}</td><td class="n">{{ p.loss }}</td><td class="n">{{ p.rtt }}</td></tr>
{% endfor %}</table>{% endif %}
<h2>Findings, worst first</h2>
{% for t in targets %}<section data-host="{{ t.host }}" data-sev="{{ t.sev }}" data-layers="{{ t.layers }}" data-ids="{{ t.ids }}"><h3>{{ t.host }} / {{ t.target }}</h3>
<p class="muted">Snapshots {{ t.before }} and {{ t.after }}, interval {{ t.interval }} s.</p>
{% if t.missing or t.warnings %}<ul>{% for m in t.missing %}<li>layer {{ m[0] }} {{ m[1] }}: {{ m[2] }}</li>{% endfor %}{% for w in t.warnings %}<li>warning: {{ w }}</li>{% endfor %}</ul>{% endif %}
{% for f in t.findings %}<details id="{{ f.anchor }}"{% if f.open %} open{% endif %}><summary><span class="sev {{ f.severity }}">{{ f.severity }}</span> <code>{{ f.id }}</code> {{ f.summary }}</summary>
<p><b>Why:</b> {{ f.explanation }}</p>
{% if f.remediation %}<p><b>Fix:</b> remediation <code>{{ f.remediation }}</code> {{ f.remediation_args }}; by hand: {{ f.advice }}</p>{% else %}<p><b>Advice:</b> {{ f.advice }}</p>{% endif %}
{% if f.explained %}<p><b>Explained by:</b> {{ f.explained }}</p>{% endif %}
{% if f.facts %}<table>{% for k, v in f.facts %}<tr><th>{{ k }}</th><td><code>{{ v }}</code></td></tr>{% endfor %}</table>{% endif %}
{% for title, rows in f.tables %}<table><tr><th>{{ title }}</th><th>before</th><th>after</th><th>delta</th><th>rate/s</th></tr>{% for c in rows %}<tr><td>{{ c[0] }}</td><td class="n">{{ c[1] }}</td><td class="n">{{ c[2] }}</td><td class="n">{{ c[3] }}</td><td class="n">{{ c[4] }}</td></tr>{% endfor %}</table>{% endfor %}
</details>
{% endfor %}{% if not t.findings %}<p>No findings.</p>{% endif %}</section>
{% endfor %}
<script>
(function(){
var form=document.getElementById("filters"),grid=document.getElementById("grid"),body=grid.tBodies[0];
var rows=Array.prototype.slice.call(body.rows),secs=Array.prototype.slice.call(document.querySelectorAll("section[data-sev]"));
function keep(el,sev,layer,host,fid){
  if(sev.indexOf(el.getAttribute("data-sev"))<0)return false;
  if(layer&&(" "+el.getAttribute("data-layers")+" ").indexOf(" "+layer+" ")<0)return false;
  if(host&&el.getAttribute("data-host").toLowerCase().indexOf(host)<0)return false;
  if(fid&&(" "+el.getAttribute("data-ids")+" ").indexOf(" "+fid+" ")<0)return false;
  return true;}
function apply(){
  var sev=[],boxes=form.querySelectorAll("input[name=sev]");
  for(var i=0;i<boxes.length;i++){if(boxes[i].checked)sev.push(boxes[i].value);}
  var layer=form.layer.value,host=form.host.value.trim().toLowerCase(),fid=form.fid.value,n=0;
  rows.forEach(function(r){var k=keep(r,sev,layer,host,fid);r.classList.toggle("hide",!k);if(k)n++;});
  secs.forEach(function(s){s.classList.toggle("hide",!keep(s,sev,layer,host,fid));});
  document.getElementById("shown").textContent=n+" of "+rows.length+" rows";}
form.addEventListener("input",apply);form.addEventListener("change",apply);
var heads=grid.tHead.rows[0].cells,dir={};
Array.prototype.forEach.call(heads,function(th,col){th.addEventListener("click",function(){
  var d=dir[col]=-(dir[col]||-1),num=th.getAttribute("data-t")==="n";
  function key(r){var c=r.cells[col];return num?parseFloat(c.getAttribute("data-k")):c.textContent;}
  rows.sort(function(a,b){var x=key(a),y=key(b);var o=num?(y-x):(x<y?-1:x>y?1:0);
    return o*d||(+a.getAttribute("data-g"))-(+b.getAttribute("data-g"));});
  var frag=document.createDocumentFragment();rows.forEach(function(r){frag.appendChild(r);});body.appendChild(frag);});});
function reveal(){var el=location.hash&&document.getElementById(location.hash.slice(1));if(el&&el.tagName==="DETAILS"){el.open=true;el.scrollIntoView();}}
window.addEventListener("hashchange",reveal);reveal();
})();
</script>
</body></html>
"""


def render(context: Dict[str, Any]) -> str:
    """The page for ``context`` (built by _report.render_html), every value autoescaped."""
    try:
        import jinja2  # pylint: disable=import-outside-toplevel  # the controller's, only when a page is rendered
    except ImportError:  # pragma: no cover - every ansible-core controller has Jinja2
        raise RuntimeError("report.html needs Jinja2 on the controller (ansible-core's own dependency)")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)
    return env.from_string(PAGE).render(**context)
