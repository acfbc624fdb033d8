/** The status page's stylesheet: one string, hashed into the page's CSP. */
export const STATUS_PAGE_STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222;background:#fafafa}
h1{font-size:1.3rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
a{color:#0b57d0}.muted{color:#777}.cards{display:flex;flex-wrap:wrap;gap:.8rem}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;min-width:11rem}
.card b{display:block;font-size:1.3rem}meter{width:100%}progress{width:8rem;vertical-align:middle}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}td.digest{font-family:ui-monospace,monospace;font-size:12px}
.ok,.up{color:#176c2c}.degraded,.cooling{color:#a35c00}.down,.failure,.auth-failed{color:#b00020}.unknown{color:#777}.offline{color:#555;font-style:italic}.success{color:#176c2c}
#error,.lasterror{color:#b00020}.lasterror{font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:.8rem}
.chart{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.4rem .6rem}
.chart svg{display:block;width:320px;height:120px}.chart .legend span{margin-right:.8rem;font-size:12px}
svg .axis{stroke:#ccc;stroke-width:1}svg text{font-size:10px;fill:#777}
svg .s0{stroke:#0b57d0;fill:none;stroke-width:1.5}svg .s1{stroke:#e8710a;fill:none;stroke-width:1.5}
.legend .s0{color:#0b57d0}.legend .s1{color:#e8710a}
pre{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;overflow:auto;font-size:12px;max-width:60rem}
input[type=search]{padding:.25rem .5rem;width:20rem;margin-bottom:.4rem}
button{font:inherit;padding:.1rem .5rem}.answer{font-size:12px;margin-left:.4rem}.note{font-size:12px}`;
