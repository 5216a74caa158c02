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

# rows of the heat map in the page's HTML (whole host groups); the others are built by its script after the load
FIRST_ROWS = 150

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
<span class="sev info">{{ s.counts.info }} info</span>
{%- if s.not_read %} <span class="sev na">{{ s.not_read }} layer(s) not read in full: not known to be clean</span>{% endif %};
{{ clean_hosts | length }} host(s) and {{ clean_targets }} target(s) clean (read in full, nothing above info), collapsed.</p>
<form id="filters" onsubmit="return false">
{% for sv in ("critical", "warning", "info", "na", "clean") %}<label><input type="checkbox" name="sev" value="{{ sv }}" checked>
 {{ "n/a, partial" if sv == "na" else sv }}</label>{% endfor %}
<label>layer <select name="layer"><option value="">any</option>{% for l in layers %}<option>{{ l }}</option>{% endfor %}</select></label>
<label>host <input name="host" size="14" placeholder="part of a name"></label>
<label>finding <select name="fid"><option value="">any</option>{% for i in ids %}<option>{{ i }}</option>{% endfor %}</select></label>
<span id="shown" class="muted"></span>
</form>
<table id="grid"><thead><tr><th class="s" data-t="t">host</th><th class="s" data-t="t">target</th><th class="s" data-t="n">worst</th>
{%- for l in layers %}<th class="s" data-t="n">{{ l }}</th>{% endfor %}<th class="s" data-t="n">findings</th><th class="s" data-t="n">probe loss</th>
</tr></thead>
<tbody>
{% for r in rows %}<tr class="{{ 'first' if r[12] else '' }}" data-host="{{ r[0] }}" data-sev="{{ r[2] }}" data-layers="{{ r[5] }}"
 data-ids="{{ r[6] }}" data-g="{{ r[7] }}" data-t="{{ r[13] }}"><td>{{ r[0] }}</td><td{% if r[14] %} class="sub"{% endif %}>{{ r[1] }}</td>
<td class="c {{ r[2] }}" data-k="{{ r[4] }}">{{ r[3] }}</td>
{%- for c in r[8] %}{% if c %}<td class="c {{ c[0] }}" data-k="{{ c[1] }}"{% if c[4] %} title="{{ c[4] }}"{% endif %}>
{%- if c[3] %}<a href="#{{ c[3] }}">{{ c[2] }}</a>{% else %}{{ c[2] }}{% endif %}</td>
{%- else %}<td class="c clean" data-k="-2">.</td>{% endif %}{% endfor %}
<td class="n" data-k="{{ r[9] or 0 }}">{{ r[9] }}</td><td data-k="{{ r[10] }}">{{ r[11] }}</td></tr>
{% endfor %}
</tbody></table>
<p class="muted">Click a row for its findings and their evidence, a cell for that finding.</p>
{% if clean_hosts %}<details id="clean-hosts"><summary>{{ clean_hosts | length }} clean host(s), every target read in full without a finding
 above info</summary><p>{{ clean_hosts | join(", ") }}</p></details>{% endif %}
{% if probes %}<h2>Probes</h2><table><tr><th>from host</th><th>probe</th><th>target</th><th>sent</th><th>answered</th><th>loss %</th>
<th>rtt min / avg / max / p50 / p95 (ms)</th></tr>
{% for p in probes %}<tr><td>{{ p.host }}</td><td>{{ p.name }}</td><td>{{ p.target }}</td><td class="n">{{ p.sent }}</td>
<td class="n">{{ p.answered }}</td><td class="n">{{ p.loss }}</td><td class="n">{{ p.rtt }}</td></tr>
{% endfor %}</table>{% endif %}
<script type="application/json" id="data">{{ data | tojson }}</script>
<script>
(function(){
"use strict";
var form=document.getElementById("filters"),grid=document.getElementById("grid"),body=grid.tBodies[0];
var rows=Array.prototype.slice.call(body.rows),D=null,next=0;
function data(){if(!D)D=JSON.parse(document.getElementById("data").textContent);return D;}
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;
  if(text!==undefined&&text!==null)e.textContent=String(text);return e;}
function td(cls,k,text){var e=el("td",cls,text);e.setAttribute("data-k",k);return e;}
function rowEl(r){var tr=el("tr",r[12]?"first":""),keys=["data-host",0,"data-sev",2,"data-layers",5,"data-ids",6,"data-g",7,"data-t",13];
  for(var i=0;i<keys.length;i+=2)tr.setAttribute(keys[i],r[keys[i+1]]);
  tr.appendChild(el("td","",r[0]));tr.appendChild(el("td",r[14]?"sub":"",r[1]));tr.appendChild(td("c "+r[2],r[4],r[3]));
  r[8].forEach(function(c){if(!c){tr.appendChild(td("c clean",-2,"."));return;}
    var e=td("c "+c[0],c[1]);if(c[4])e.title=c[4];
    if(c[3]){var a=el("a","",c[2]);a.href="#"+c[3];e.appendChild(a);}else{e.textContent=c[2];}
    tr.appendChild(e);});
  tr.appendChild(td("n",r[9]||0,r[9]));tr.appendChild(td("",r[10],r[11]));return tr;}
function chunk(n){var R=data().rows,frag=document.createDocumentFragment(),end=Math.min(R.length,next+n);
  for(;next<end;next++){var tr=rowEl(R[next]);rows.push(tr);frag.appendChild(tr);}
  body.appendChild(frag);count();return next<R.length;}
function all(){while(chunk(100000)){}}
function count(){var n=0;rows.forEach(function(r){if(!r.classList.contains("hide"))n++;});
  document.getElementById("shown").textContent=n+" of "+(rows.length+data().rows.length-next)+" rows";}
function para(parent,label,text){var p=el("p");p.appendChild(el("b","",label));p.appendChild(document.createTextNode(" "+text));parent.appendChild(p);}
function table(head,body_){var t=el("table"),h=el("tr");head.forEach(function(x){h.appendChild(el("th","",x));});t.appendChild(h);
  body_.forEach(function(r){var tr=el("tr");r.forEach(function(x,i){tr.appendChild(el("td",i?"n":"",x));});t.appendChild(tr);});return t;}
function detail(tr){var n=tr.nextSibling;if(n&&n.className==="detail")return n;var t=+tr.getAttribute("data-t");if(t<0)return null;
  var d=data().details[t],row=el("tr","detail"),cell=el("td");cell.colSpan=tr.cells.length;row.appendChild(cell);
  cell.appendChild(el("p","muted","Snapshots "+d.before+" and "+d.after+", interval "+d.interval+" s."));
  if(d.missing.length||d.warnings.length){var ul=el("ul");
    d.missing.forEach(function(m){ul.appendChild(el("li","","layer "+m[0]+" "+m[1]+": "+m[2]));});
    d.warnings.forEach(function(w){ul.appendChild(el("li","","warning: "+w));});cell.appendChild(ul);}
  if(!d.findings.length)cell.appendChild(el("p","","No findings."));
  d.findings.forEach(function(f){var det=el("details"),sum=el("summary");det.id=f.anchor;
    sum.appendChild(el("span","sev "+f.severity,f.severity));sum.appendChild(document.createTextNode(" "));
    sum.appendChild(el("code","",f.id));sum.appendChild(document.createTextNode(" "+f.summary));det.appendChild(sum);
    para(det,"Why:",f.explanation);
    if(f.remediation){var p=el("p");p.appendChild(el("b","","Fix:"));p.appendChild(document.createTextNode(" remediation "));
      p.appendChild(el("code","",f.remediation));p.appendChild(document.createTextNode(" "+f.remediation_args+"; by hand: "+f.advice));
      det.appendChild(p);}else{para(det,"Advice:",f.advice);}
    if(f.explained)para(det,"Explained by:",f.explained);
    if(f.facts.length){var ft=el("table");f.facts.forEach(function(kv){var r=el("tr"),c=el("td");r.appendChild(el("th","",kv[0]));
      c.appendChild(el("code","",kv[1]));r.appendChild(c);ft.appendChild(r);});det.appendChild(ft);}
    f.tables.forEach(function(t){det.appendChild(table([t[0],"before","after","delta","rate/s"],t[1]));});
    cell.appendChild(det);});
  tr.parentNode.insertBefore(row,tr.nextSibling);return row;}
function closeAll(){Array.prototype.slice.call(body.querySelectorAll("tr.detail")).forEach(function(r){r.remove();});}
function show(tr,anchor){detail(tr);var det=document.getElementById(anchor);
  if(det){det.open=true;det.scrollIntoView();history.replaceState(null,"","#"+anchor);}}
body.addEventListener("click",function(ev){var tr=ev.target.closest("tr"),a=ev.target.closest("a");
  if(!tr||tr.className==="detail")return;
  if(a){ev.preventDefault();show(tr,a.getAttribute("href").slice(1));return;}
  var n=tr.nextSibling;if(n&&n.className==="detail"){n.remove();}else{detail(tr);}});
function keep(el_,sev,layer,host,fid){
  if(sev.indexOf(el_.getAttribute("data-sev"))<0)return false;
  if(layer&&(" "+el_.getAttribute("data-layers")+" ").indexOf(" "+layer+" ")<0)return false;
  if(host&&el_.getAttribute("data-host").toLowerCase().indexOf(host)<0)return false;
  if(fid&&(" "+el_.getAttribute("data-ids")+" ").indexOf(" "+fid+" ")<0)return false;
  return true;}
function apply(){all();closeAll();
  var sev=[],boxes=form.querySelectorAll("input[name=sev]");
  for(var i=0;i<boxes.length;i++){if(boxes[i].checked)sev.push(boxes[i].value);}
  var layer=form.layer.value,host=form.host.value.trim().toLowerCase(),fid=form.fid.value;
  rows.forEach(function(r){r.classList.toggle("hide",!keep(r,sev,layer,host,fid));});count();}
form.addEventListener("input",apply);form.addEventListener("change",apply);
var heads=grid.tHead.rows[0].cells,dir={};
Array.prototype.forEach.call(heads,function(th,col){th.addEventListener("click",function(){all();closeAll();
  var d=dir[col]=-(dir[col]||-1),num=th.getAttribute("data-t")==="n";
  function key(r){var c=r.cells[col];return num?parseFloat(c.getAttribute("data-k")):c.textContent;}
  rows.sort(function(a,b){var x=key(a),y=key(b);var o=num?(y-x):(x<y?-1:x>y?1:0);
    return o*d||(+a.getAttribute("data-g"))-(+b.getAttribute("data-g"));});
  var frag=document.createDocumentFragment();rows.forEach(function(r){frag.appendChild(r);});body.appendChild(frag);});});
function reveal(){var h=location.hash.slice(1);if(!h)return;var ds=data().details;
  for(var t=0;t<ds.length;t++){for(var i=0;i<ds[t].findings.length;i++){if(ds[t].findings[i].anchor===h){all();
    var tr=body.querySelector("tr[data-t='"+t+"']");if(tr)show(tr,h);return;}}}}
window.packetlossReport={all:all,show:show};
window.addEventListener("load",function(){count();reveal();(function step(){if(chunk(500))setTimeout(step,20);})();});
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
