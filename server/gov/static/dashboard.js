/* The government dashboard: sign in (login, password, TOTP) through POST /api/gov/v1/sessions,
 * keep the token in sessionStorage (gone with the tab), render every panel from the reports API
 * (docs/reporting.md) with Apache ECharts. Suppressed cells (fewer than k contributors) arrive
 * as {"value": null, "status": "suppressed"} and are drawn hatched and labelled, never as 0.
 * No inline script, no eval (the page's Content-Security-Policy allows neither).
 * window.tanpuhuiDashboard exposes the state for the headless-browser test. */
"use strict";

(function () {
  const SESSIONS = "/api/gov/v1/sessions";
  const REPORTS = "/api/gov/v1/reports";
  const TOKEN_KEY = "tanpuhui.gov.session";
  const LANG_KEY = "tanpuhui.gov.lang";
  const SERIES_DAYS = 30; // the daily series: the last 30 days

  const TEXT = {
    "zh-CN": {
      title: "碳普惠 · 政府看板",
      switch_language: "English",
      sign_out: "退出",
      sign_in_title: "政府用户登录",
      login: "登录名",
      password: "密码",
      totp: "动态验证码（TOTP）",
      sign_in: "登录",
      sign_in_rejected: "登录名、密码或动态验证码不正确。",
      sign_in_failed: "登录失败，请稍后再试。",
      period: "统计期",
      suppression_note: "少于 k 个贡献者的单元格已抑制（斜纹），绝不显示为 0。",
      series_title: "每日核证减排量（近 30 天）",
      modes_title: "分出行方式",
      map_title: "分辖区减排量",
      districts_title: "辖区明细",
      district: "辖区",
      value_kg: "减排量 (kg CO₂e)",
      grades_title: "企业碳效等级分布",
      index_title: "双碳指数",
      scenario_title: "达峰路径情景（Kaya 恒等式）",
      scenario_note:
        "示意城市：基准年人口 1780 万、人均 GDP 19 万元、能源强度 0.3 tce/万元、能源碳强度 2.1 t CO₂/tce，人均 GDP 增速每年放缓 0.15 个百分点；拖动滑块改变年增长率。",
      mt: "百万吨 CO₂",
      no_data: "无数据",
      indicator_scores: "指标得分",
      points_outstanding: "未兑付积分",
      points_per_kg: "每千克减排发放积分",
      footer: "图表：Apache ECharts 6.1.0（Apache License 2.0）",
      suppressed: "已抑制",
      suppressed_long: "已抑制（贡献者少于 k）",
      verified_kg: "核证减排量",
      trips: "出行次数",
      participants: "参与人数",
      points_issued: "发放积分",
      points_redeemed: "兑换积分",
      points_donated: "捐赠积分",
      enterprises: "企业数",
      kg: "kg CO₂e",
      t: "t CO₂e",
      count: "个",
      points: "分",
      grade: "等级",
      ungraded: "未评级",
      enterprises_count: "企业数",
      index_value: "指数",
      indicator: "指标",
      score: "得分",
      weight: "权重",
      emissions_mt: "排放量",
      peak: "峰值",
      peak_in: "达峰年份 {year}，峰值 {value}",
      no_peak: "在情景期内未达峰",
      synergy_title: "减污降碳协同（分行业）",
      synergy_note:
        "按行业：企业碳强度与污染物强度的相关系数，以及把高于本行业最优四分位的企业降到该水平可同时削减的碳与污染物负荷（协同减排潜力，占全区比例）；企业数过少的行业已抑制。",
      industry: "行业",
      correlation: "相关系数 r",
      carbon_median: "碳强度中位数 (t/万元)",
      pollutant_median: "污染物强度中位数 (当量/万元)",
      potential: "协同减排潜力",
      potential_pct: "协同减排潜力 (%)",
      decision_title: "拟建项目与能源替代对达峰的影响",
      decision_note:
        "在上方的达峰路径上叠加一个拟建项目（自投产年起的年排放）和一项能源替代（供能方新增排放与用能方避免排放之差），判断能否按目标年达峰以及需要削减或吸收的缺口。",
      decision_target: "目标达峰年",
      decision_project_t: "拟建项目年排放 (t CO₂)",
      decision_project_year: "项目投产年",
      decision_added_t: "能源替代：供能方新增排放 (t CO₂/年)",
      decision_avoided_t: "能源替代：用能方避免排放 (t CO₂/年)",
      decision_run: "评估",
      baseline: "基准路径",
      with_decisions: "叠加项目与替代后",
      decision_on_time: "按期达峰：{year} 年达峰（目标 {target} 年）。",
      decision_late: "不能按期达峰：峰值年 {year}（目标 {target} 年）；{gap_year} 年需削减或吸收 {gap}。",
      decision_baseline_late: "基准路径本身也不能按期达峰。",
      load_failed: "数据加载失败：",
      session_expired: "登录已过期，请重新登录。",
      modes: {
        metro: "地铁", bus: "公交", tram: "有轨电车", rail: "铁路", ferry: "轮渡",
        shared_bike: "共享单车", bike: "自行车", e_bike: "电动自行车", walk: "步行",
        steps: "步数", ev: "新能源汽车", carpool: "拼车",
      },
      params: {
        population: "人口年增长率",
        gdp_per_capita: "人均 GDP 年增长率",
        energy_intensity: "能源强度年变化率",
        carbon_intensity: "能源碳强度年变化率",
      },
    },
    en: {
      title: "Carbon inclusion · Government dashboard",
      switch_language: "中文",
      sign_out: "Sign out",
      sign_in_title: "Government sign-in",
      login: "Login",
      password: "Password",
      totp: "One-time code (TOTP)",
      sign_in: "Sign in",
      sign_in_rejected: "The login, password or one-time code is not right.",
      sign_in_failed: "Sign-in failed; try again later.",
      period: "Period",
      suppression_note:
        "Cells with fewer than k contributors are suppressed (hatched), never shown as 0.",
      series_title: "Verified reductions per day (last 30 days)",
      modes_title: "By mode",
      map_title: "By district",
      districts_title: "Districts",
      district: "District",
      value_kg: "Reduction (kg CO₂e)",
      grades_title: "Enterprise grade distribution",
      index_title: "Dual-carbon index",
      scenario_title: "Peak path scenario (Kaya identity)",
      scenario_note:
        "An illustrative city: in the base year 17.8 million people, GDP per capita 190,000 yuan, 0.3 tce per 10,000 yuan, 2.1 t CO₂ per tce, GDP per capita growth slowing by 0.15 point a year; move a slider to change a growth rate.",
      mt: "Mt CO₂",
      no_data: "no data",
      indicator_scores: "Indicator scores",
      points_outstanding: "Points outstanding",
      points_per_kg: "Points issued per kg CO₂e",
      footer: "Charts: Apache ECharts 6.1.0 (Apache License 2.0)",
      suppressed: "suppressed",
      suppressed_long: "suppressed (fewer than k contributors)",
      verified_kg: "Verified reductions",
      trips: "Trips",
      participants: "Participants",
      points_issued: "Points issued",
      points_redeemed: "Points redeemed",
      points_donated: "Points donated",
      enterprises: "Enterprises",
      kg: "kg CO₂e",
      t: "t CO₂e",
      count: "",
      points: "pts",
      grade: "Grade",
      ungraded: "Ungraded",
      enterprises_count: "Enterprises",
      index_value: "Index",
      indicator: "Indicator",
      score: "Score",
      weight: "Weight",
      emissions_mt: "Emissions",
      peak: "Peak",
      peak_in: "Peaks in {year} at {value}",
      no_peak: "No peak within the scenario's years",
      synergy_title: "Carbon and pollution synergy by industry",
      synergy_note:
        "Per industry: the correlation of its enterprises' carbon and pollutant intensities, and the carbon and pollutant load that bringing those above the industry's best quartile down to it would cut together (joint reduction potential, as a share of the region's); industries of too few enterprises are suppressed.",
      industry: "Industry",
      correlation: "Correlation r",
      carbon_median: "Median carbon intensity (t/10k yuan)",
      pollutant_median: "Median pollutant intensity (eq./10k yuan)",
      potential: "Joint reduction potential",
      potential_pct: "Joint reduction potential (%)",
      decision_title: "Planned projects and energy substitution on the peak path",
      decision_note:
        "Adds a planned project (its annual emissions from the year it starts) and an energy substitution (the supplier's added minus the consumers' avoided emissions) to the peak path above: does the region still peak by the target year, and what must be cut or absorbed?",
      decision_target: "Target peak year",
      decision_project_t: "Planned project's annual emissions (t CO₂)",
      decision_project_year: "Project starts in",
      decision_added_t: "Substitution: supplier's added emissions (t CO₂/yr)",
      decision_avoided_t: "Substitution: consumers' avoided emissions (t CO₂/yr)",
      decision_run: "Evaluate",
      baseline: "Baseline",
      with_decisions: "With the project and substitution",
      decision_on_time: "Peaks on time: in {year} (target {target}).",
      decision_late: "Does not peak on time: peak in {year} (target {target}); {gap} to cut or absorb in {gap_year}.",
      decision_baseline_late: "The baseline itself does not peak on time.",
      load_failed: "Could not load: ",
      session_expired: "The session expired; sign in again.",
      modes: {
        metro: "Metro", bus: "Bus", tram: "Tram", rail: "Rail", ferry: "Ferry",
        shared_bike: "Shared bike", bike: "Bicycle", e_bike: "E-bike", walk: "Walk",
        steps: "Steps", ev: "Electric car", carpool: "Carpool",
      },
      params: {
        population: "Population growth per year",
        gdp_per_capita: "GDP per capita growth per year",
        energy_intensity: "Energy intensity change per year",
        carbon_intensity: "Carbon intensity of energy change per year",
      },
    },
  };

  // The hatching of a suppressed cell in every chart (an ECharts decal), and its grey.
  const SUPPRESSED_COLOR = "#cbd2d9";
  const HATCH = {
    symbol: "rect",
    symbolSize: 1,
    dashArrayX: [1, 0],
    dashArrayY: [3, 5],
    rotation: Math.PI / 4,
    color: "#7b8794",
  };

  const state = {
    ready: false, // every panel rendered from the API
    errors: [], // what failed to load (shown on the page too)
    charts: {}, // panel -> ECharts instance
    data: {}, // panel -> what the API answered, normalised
    scenarioQueries: 0,
    decisionQueries: 0,
    lang: null,
  };
  window.tanpuhuiDashboard = state;

  const $ = (id) => document.getElementById(id);

  // --- language ------------------------------------------------------------------------------

  function pickLanguage() {
    const kept = sessionStorage.getItem(LANG_KEY);
    if (kept === "en" || kept === "zh-CN") return kept;
    const asked = (navigator.languages && navigator.languages[0]) || navigator.language || "";
    return asked.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
  }

  function t(key) {
    const table = TEXT[state.lang];
    return key in table ? table[key] : key;
  }

  function modeName(mode) {
    return TEXT[state.lang].modes[mode] || mode;
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    document.title = t("title");
    for (const el of document.querySelectorAll("[data-i18n]")) {
      el.textContent = t(el.dataset.i18n);
    }
  }

  // --- numbers and cells ---------------------------------------------------------------------

  // A cell of the API: a number, or {"value": n|null, "status": "ok"|"suppressed"}.
  function cell(raw) {
    if (raw === null || raw === undefined) return { value: null, suppressed: false };
    if (typeof raw === "number") return { value: raw, suppressed: false };
    const suppressed = raw.status === "suppressed";
    const value = suppressed || typeof raw.value !== "number" ? null : raw.value;
    return { value, suppressed };
  }

  function fmt(n, digits) {
    const locale = state.lang === "en" ? "en-GB" : "zh-CN";
    return Number(n).toLocaleString(locale, { maximumFractionDigits: digits ?? 1 });
  }

  // --- the API ---------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.code = problem && problem.code;
    }
  }

  function session() {
    try {
      return JSON.parse(sessionStorage.getItem(TOKEN_KEY) || "null");
    } catch (_) {
      return null;
    }
  }

  async function call(method, path, body, auth) {
    const headers = { Accept: "application/json", "Accept-Language": state.lang };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const s = session();
    if (auth !== false && s) headers.Authorization = `Bearer ${s.access_token}`;
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    const text = await response.text();
    let parsed = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch (_) {
        parsed = null;
      }
    }
    if (!response.ok) throw new ApiError(response.status, parsed);
    return parsed;
  }

  const get = (path) => call("GET", path);

  // A calendar day in the browser's own zone (a government office's, as the programme's).
  function isoDay(d) {
    const m = String(d.getMonth() + 1).padStart(2, "0");
    const day = String(d.getDate()).padStart(2, "0");
    return `${d.getFullYear()}-${m}-${day}`;
  }

  // The periods offered: this year and last, and the last twelve months. Travel panels use
  // the chosen one; the enterprises' panels the last complete year (reports come monthly).
  function periodChoices() {
    const now = new Date();
    const y = now.getFullYear();
    const out = [
      { grain: "year", period: `${y}-01-01`, label: String(y) },
      { grain: "year", period: `${y - 1}-01-01`, label: String(y - 1) },
    ];
    for (let k = 0; k < 12; k += 1) {
      const d = new Date(y, now.getMonth() - k, 1);
      const m = String(d.getMonth() + 1).padStart(2, "0");
      out.push({ grain: "month", period: `${d.getFullYear()}-${m}-01`, label: `${d.getFullYear()}-${m}` });
    }
    return out;
  }

  function buildPeriods() {
    const select = $("period-select");
    if (select.options.length) return;
    for (const c of periodChoices()) {
      const o = document.createElement("option");
      o.value = `${c.grain}:${c.period}`;
      o.textContent = c.label;
      select.appendChild(o);
    }
    select.addEventListener("change", () => showDashboard());
  }

  function period() {
    const [grain, first] = $("period-select").value.split(":");
    const year = Number(first.slice(0, 4));
    const enterpriseYear = Math.min(year, new Date().getFullYear() - 1);
    return { grain, period: first, enterpriseYear };
  }

  function query(params) {
    return new URLSearchParams(params).toString();
  }

  // --- sign-in ---------------------------------------------------------------------------------

  function showSignIn(message) {
    $("dashboard").hidden = true;
    $("sign-out").hidden = true;
    $("who").hidden = true;
    $("sign-in").hidden = false;
    const err = $("sign-in-error");
    err.hidden = !message;
    err.textContent = message || "";
  }

  async function signIn(event) {
    event.preventDefault();
    const body = {
      login: $("login").value.trim(),
      password: $("password").value,
      totp: $("totp").value.trim(),
    };
    $("sign-in-submit").disabled = true;
    try {
      const answer = await call("POST", SESSIONS, body, false);
      sessionStorage.setItem(
        TOKEN_KEY,
        JSON.stringify({
          access_token: answer.access_token,
          role: answer.role,
          expires_at: answer.expires_at,
          login: body.login,
        })
      );
      $("password").value = "";
      $("totp").value = "";
      await showDashboard();
    } catch (e) {
      showSignIn(e.status === 401 ? t("sign_in_rejected") : `${t("sign_in_failed")} (${e.message})`);
    } finally {
      $("sign-in-submit").disabled = false;
    }
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    for (const chart of Object.values(state.charts)) chart.dispose();
    state.charts = {};
    state.ready = false;
    showSignIn("");
  }

  // --- panels ----------------------------------------------------------------------------------

  function chart(panel) {
    if (!state.charts[panel]) {
      const id = `chart-${panel}`;
      state.charts[panel] = echarts.init($(id), null, { renderer: "canvas" });
    }
    return state.charts[panel];
  }

  function figureCard(label, c, unit, digits) {
    const box = document.createElement("div");
    box.className = "figure";
    const l = document.createElement("div");
    l.className = "label";
    l.textContent = label;
    const v = document.createElement("div");
    v.className = "value";
    if (c.suppressed) {
      v.classList.add("suppressed");
      v.dataset.status = "suppressed";
      v.textContent = t("suppressed_long");
    } else {
      v.textContent = c.value === null ? "—" : fmt(c.value, digits);
      if (unit) {
        const u = document.createElement("span");
        u.className = "unit";
        u.textContent = unit;
        v.appendChild(u);
      }
    }
    box.append(l, v);
    return box;
  }

  function renderHeadline(totals, liability) {
    const box = $("headline");
    box.replaceChildren();
    const rows = [
      ["verified_kg", totals.verified_kg, t("kg"), 1],
      ["trips", totals.trips, t("count"), 0],
      ["participants", totals.participants, t("count"), 0],
      ["points_issued", totals.points_issued, t("points"), 0],
    ];
    if (liability) {
      rows.push(
        ["points_outstanding", liability.points_outstanding, t("points"), 0],
        ["points_redeemed", liability.points_redeemed, t("points"), 0],
        ["points_donated", liability.points_donated, t("points"), 0],
        ["points_per_kg", liability.points_per_kg, "", 2]
      );
    }
    for (const [key, c, unit, digits] of rows) box.appendChild(figureCard(t(key), c, unit, digits));
  }

  // Bars whose suppressed categories show a hatched stub labelled "suppressed" (a second,
  // stacked series), never a bar of 0 nor a number.
  function barsWithSuppression(categories, cells, name) {
    const known = cells.filter((c) => !c.suppressed && c.value !== null).map((c) => c.value);
    const stub = Math.max(1, ...known) * 0.12;
    return [
      {
        name,
        type: "bar",
        stack: "v",
        data: cells.map((c) => (c.suppressed ? null : c.value)),
        itemStyle: { color: "#127a5b" },
        label: { show: true, position: "top", formatter: (p) => fmt(p.value, 1) },
      },
      {
        name: t("suppressed"),
        type: "bar",
        stack: "v",
        data: cells.map((c) =>
          c.suppressed
            ? { value: stub, status: "suppressed", itemStyle: { color: SUPPRESSED_COLOR, decal: HATCH } }
            : null
        ),
        label: { show: true, position: "top", formatter: () => t("suppressed") },
        tooltip: { formatter: (p) => `${categories[p.dataIndex]}: ${t("suppressed_long")}` },
      },
    ];
  }

  // A suppressed day: a gap in the line and a hatched column over the day, labelled.
  function renderSeries(points) {
    const days = points.map((p) => p.day);
    const known = points.filter((p) => !p.cell.suppressed && p.cell.value !== null).map((p) => p.cell.value);
    const top = Math.max(1, ...known);
    const hidden = points.some((p) => p.cell.suppressed);
    chart("series").setOption(
      {
        tooltip: {
          trigger: "axis",
          formatter: (ps) => {
            const p = points[ps[0].dataIndex];
            return `${p.day}: ${p.cell.suppressed ? t("suppressed_long") : `${fmt(p.cell.value, 1)} ${t("kg")}`}`;
          },
        },
        legend: hidden ? { data: [t("suppressed")], right: 10, top: 0 } : undefined,
        grid: { left: 60, right: 20, top: 24, bottom: 40 },
        xAxis: { type: "category", data: days },
        yAxis: { type: "value", name: t("kg") },
        series: [
          {
            name: t("verified_kg"),
            type: "line",
            data: points.map((p) => (p.cell.suppressed ? null : p.cell.value)),
            connectNulls: false,
            smooth: true,
            areaStyle: { opacity: 0.15 },
            itemStyle: { color: "#127a5b" },
          },
          {
            name: t("suppressed"),
            type: "bar",
            barWidth: "70%",
            silent: true,
            itemStyle: { color: SUPPRESSED_COLOR, decal: HATCH },
            data: points.map((p) => (p.cell.suppressed ? { value: top, status: "suppressed" } : null)),
          },
        ],
      },
      true
    );
  }

  function renderModes(rows) {
    const categories = rows.map((r) => modeName(r.mode));
    chart("modes").setOption(
      {
        tooltip: { trigger: "item" },
        grid: { left: 60, right: 20, top: 30, bottom: 40 },
        xAxis: { type: "category", data: categories },
        yAxis: { type: "value", name: t("kg") },
        series: barsWithSuppression(categories, rows.map((r) => r.cell), t("verified_kg")),
      },
      true
    );
  }

  function renderGrades(rows) {
    const categories = rows.map((r) => (r.grade === "ungraded" ? t("ungraded") : `${t("grade")} ${r.grade}`));
    chart("grades").setOption(
      {
        tooltip: { trigger: "item" },
        grid: { left: 50, right: 20, top: 30, bottom: 40 },
        xAxis: { type: "category", data: categories, axisLabel: { interval: 0 } },
        yAxis: { type: "value", name: t("enterprises_count"), minInterval: 1 },
        series: barsWithSuppression(categories, rows.map((r) => r.cell), t("enterprises_count")),
      },
      true
    );
  }

  function renderMap(geojson, rows) {
    // Registered under the districts' codes (feature.properties.name is what ECharts matches):
    // the names shown come from the features' own names.
    const names = {};
    const byCode = {
      type: "FeatureCollection",
      features: geojson.features.map((f) => {
        names[f.properties.code] = f.properties.name;
        return { ...f, properties: { ...f.properties, name: f.properties.code } };
      }),
    };
    echarts.registerMap("tanpuhui-districts", byCode);
    // Degrees of longitude shrink with latitude: the map's true proportions at its middle.
    const lats = [];
    for (const f of geojson.features) {
      const g = f.geometry;
      const rings = g.type === "Polygon" ? g.coordinates : g.type === "MultiPolygon" ? g.coordinates.flat() : [];
      for (const ring of rings) for (const pt of ring) lats.push(pt[1]);
    }
    const midLat = lats.length ? (Math.min(...lats) + Math.max(...lats)) / 2 : 0;
    const aspect = Math.max(0.2, Math.cos((midLat * Math.PI) / 180));
    const values = rows.filter((r) => !r.cell.suppressed && r.cell.value !== null).map((r) => r.cell.value);
    const data = rows.map((r) =>
      r.cell.suppressed
        ? {
            name: r.code,
            value: NaN,
            status: "suppressed",
            itemStyle: { areaColor: SUPPRESSED_COLOR, decal: HATCH },
            label: { show: true, formatter: () => names[r.code] || r.code },
          }
        : { name: r.code, value: r.cell.value, status: "ok" }
    );
    chart("map").setOption(
      {
        tooltip: {
          trigger: "item",
          formatter: (p) => {
            const row = rows.find((r) => r.code === p.name);
            const label = names[p.name] || p.name;
            if (!row) return label;
            return row.cell.suppressed ? `${label}: ${t("suppressed_long")}` : `${label}: ${fmt(row.cell.value, 1)} ${t("kg")}`;
          },
        },
        visualMap: {
          min: values.length ? Math.min(...values) : 0,
          max: values.length ? Math.max(...values, 1) : 1,
          left: 10,
          bottom: 10,
          text: [t("kg"), ""],
          calculable: true,
          inRange: { color: ["#e3f4ec", "#61b893", "#0b5e45"] },
          seriesIndex: 0,
        },
        series: [
          {
            name: t("map_title"),
            type: "map",
            map: "tanpuhui-districts",
            roam: false,
            data,
            layoutSize: "96%",
            aspectScale: aspect,
            label: { show: true, formatter: (p) => names[p.name] || p.name, fontSize: 9, color: "#1f2933" },
            itemStyle: { borderColor: "#fff", borderWidth: 1, areaColor: "#f0f4f8" },
            emphasis: { label: { show: true } },
          },
        ],
      },
      true
    );
    // The same figures as text: each suppressed cell says so.
    const body = $("district-table").tBodies[0];
    body.replaceChildren();
    for (const r of rows) {
      const tr = document.createElement("tr");
      const name = document.createElement("td");
      name.textContent = names[r.code] || r.code;
      const v = document.createElement("td");
      v.className = "num";
      v.dataset.code = r.code;
      if (r.cell.suppressed) {
        v.classList.add("suppressed");
        v.dataset.status = "suppressed";
        v.textContent = t("suppressed");
      } else {
        v.textContent = r.cell.value === null ? "—" : fmt(r.cell.value, 1);
      }
      tr.append(name, v);
      body.appendChild(tr);
    }
  }

  function renderIndex(index) {
    $("index-year").textContent = String(index.year);
    chart("index").setOption(
      {
        tooltip: { trigger: "item" },
        series: [
          {
            name: t("index_value"),
            type: "gauge",
            center: ["50%", "58%"],
            radius: "90%",
            min: 0,
            max: 100,
            progress: { show: true, width: 14 },
            axisLine: { lineStyle: { width: 14 } },
            axisLabel: { distance: 20, fontSize: 10 },
            pointer: { width: 5 },
            detail: {
              valueAnimation: false,
              formatter: (v) => (index.value === null ? t("no_data") : fmt(v, 1)),
              fontSize: 24,
              offsetCenter: [0, "72%"],
            },
            data: [{ value: index.value === null ? 0 : index.value, name: t("index_value") }],
          },
        ],
      },
      true
    );
    const body = $("index-table").tBodies[0];
    body.replaceChildren();
    for (const i of index.indicators) {
      const tr = document.createElement("tr");
      const name = document.createElement("td");
      name.textContent = i.title[state.lang];
      const score = document.createElement("td");
      score.className = "num";
      score.textContent = i.score === null ? t("no_data") : fmt(i.score, 1);
      const weight = document.createElement("td");
      weight.className = "num";
      weight.textContent = `${fmt(i.weight * 100, 0)} %`;
      tr.append(name, score, weight);
      body.appendChild(tr);
    }
  }

  function renderScenario(s) {
    const unit = t("mt"); // at render: the language may have changed since the load
    chart("scenario").setOption(
      {
        tooltip: { trigger: "axis" },
        grid: { left: 70, right: 20, top: 20, bottom: 40 },
        xAxis: { type: "category", data: s.years.map(String) },
        yAxis: { type: "value", name: unit, scale: true },
        series: [
          {
            name: t("emissions_mt"),
            type: "line",
            data: s.emissions,
            itemStyle: { color: "#b44d12" },
            markPoint:
              s.peak_year !== null
                ? { data: [{ name: t("peak"), coord: [String(s.peak_year), s.peak_value], value: t("peak") }] }
                : undefined,
          },
        ],
      },
      true
    );
    $("scenario-peak").textContent =
      s.peak_year !== null
        ? t("peak_in").replace("{year}", s.peak_year).replace("{value}", `${fmt(s.peak_value, 0)} ${unit}`)
        : t("no_peak");
  }

  // Industries ranked by joint reduction potential (in % of the region's load); a suppressed
  // industry is a hatched stub in the chart and "suppressed" in every cell of its table row.
  function renderSynergy(syn) {
    $("synergy-year").textContent = String(syn.year);
    const categories = syn.industries.map((r) => r.industry);
    const cells = syn.industries.map((r) =>
      r.potential.suppressed || r.potential.value === null
        ? r.potential
        : { value: r.potential.value * 100, suppressed: false }
    );
    chart("synergy").setOption(
      {
        tooltip: { trigger: "item" },
        grid: { left: 60, right: 20, top: 30, bottom: 60 },
        xAxis: { type: "category", data: categories, axisLabel: { interval: 0, rotate: 30 } },
        yAxis: { type: "value", name: t("potential_pct") },
        series: barsWithSuppression(categories, cells, t("potential_pct")),
      },
      true
    );
    const body = $("synergy-table").querySelector("tbody");
    body.replaceChildren();
    for (const r of syn.industries) {
      const tr = document.createElement("tr");
      tr.dataset.industry = r.industry;
      const cols = [
        r.industry,
        r.suppressed ? t("suppressed") : r.enterprises.value === null ? t("no_data") : fmt(r.enterprises.value, 0),
        r.suppressed || r.correlation === null ? (r.suppressed ? t("suppressed") : t("no_data")) : fmt(r.correlation, 2),
        r.suppressed ? t("suppressed") : r.carbon_median === null ? t("no_data") : fmt(r.carbon_median, 3),
        r.suppressed ? t("suppressed") : r.pollutant_median === null ? t("no_data") : fmt(r.pollutant_median, 3),
        r.potential.suppressed ? t("suppressed") : r.potential.value === null ? t("no_data") : `${fmt(r.potential.value * 100, 2)} %`,
      ];
      cols.forEach((text, i) => {
        const td = document.createElement("td");
        if (i > 0) td.className = "num";
        td.textContent = text;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
  }

  function renderDecision(d) {
    const target = String(d.target_peak_year);
    chart("decision").setOption(
      {
        tooltip: { trigger: "axis" },
        legend: { top: 0 },
        grid: { left: 70, right: 20, top: 30, bottom: 40 },
        xAxis: { type: "category", data: d.years.map(String) },
        yAxis: { type: "value", name: t("mt"), scale: true },
        series: [
          { name: t("baseline"), type: "line", data: d.baseline, itemStyle: { color: "#7b8794" }, lineStyle: { type: "dashed" } },
          {
            name: t("with_decisions"),
            type: "line",
            data: d.emissions,
            itemStyle: { color: "#b44d12" },
            markLine: { symbol: "none", label: { formatter: target }, data: [{ xAxis: target }] },
          },
        ],
      },
      true
    );
    const mt = (v) => `${fmt(v / 1e6, 2)} ${t("mt")}`;
    let text = d.peaks_on_time
      ? t("decision_on_time").replace("{year}", d.peak_year).replace("{target}", target)
      : t("decision_late")
          .replace("{year}", d.peak_year)
          .replace("{target}", target)
          .replace("{gap_year}", d.gap_year)
          .replace("{gap}", mt(d.gap_t));
    if (!d.baseline_peaks_on_time) text += ` ${t("decision_baseline_late")}`;
    $("decision-result").textContent = text;
  }

  // --- the reports API's answers, normalised (docs/reporting.md) -------------------------------

  const kg = (c) => ({ value: c.value === null ? null : c.value / 1000, suppressed: c.suppressed });

  const load = {
    async totals(p) {
      const a = await get(`${REPORTS}/totals?${query({ grain: p.grain, period: p.period })}`);
      const f = a.figures;
      return {
        verified_kg: kg(cell(f.grams)),
        trips: cell(f.trips),
        participants: cell(f.participants),
        points_issued: cell(f.points),
      };
    },
    async liability() {
      const a = await get(`${REPORTS}/liability?${query({ unit: "year" })}`);
      return {
        points_outstanding: cell(a.outstanding),
        points_redeemed: cell(a.redeemed),
        points_donated: cell(a.donated),
        points_per_kg: cell(a.points_per_kg),
      };
    },
    async series() {
      const end = new Date();
      const start = new Date(end.getTime() - (SERIES_DAYS - 1) * 86400000);
      const a = await get(`${REPORTS}/series?${query({ grain: "day", start: isoDay(start), end: isoDay(end) })}`);
      return a.points.map((x) => ({ day: x.period, cell: kg(cell(x.grams)) }));
    },
    async modes(p) {
      const a = await get(`${REPORTS}/by-mode?${query({ grain: p.grain, period: p.period })}`);
      return a.modes.map((x) => ({ mode: x.mode, cell: kg(cell(x.figures.grams)) }));
    },
    async districts(p) {
      const a = await get(`${REPORTS}/by-district?${query({ grain: p.grain, period: p.period })}`);
      return Object.entries(a.districts)
        .sort(([x], [y]) => x.localeCompare(y))
        .map(([code, f]) => ({ code, cell: kg(cell(f.grams)) }));
    },
    async geojson() {
      return get(`${REPORTS}/districts.geojson`);
    },
    async grades(p) {
      const a = await get(`${REPORTS}/enterprises/grades?${query({ year: p.enterpriseYear })}`);
      return ["1", "2", "3", "4", "5", "ungraded"].map((g) => ({ grade: g, cell: cell(a.total.grades[g]) }));
    },
    async index(p) {
      const a = await get(`${REPORTS}/index?${query({ year: p.enterpriseYear })}`);
      return {
        year: a.year,
        value: a.index,
        indicators: a.indicators.map((i) => ({
          code: i.code,
          title: { en: i.title_en, "zh-CN": i.title_zh },
          score: i.score,
          weight: i.effective_weight,
        })),
      };
    },
    async scenario(params) {
      state.scenarioQueries += 1;
      const a = await get(`${REPORTS}/scenarios/kaya?${query(params)}`);
      return {
        years: a.years.map((y) => y.year),
        emissions: a.years.map((y) => y.emissions_t / 1e6),
        peak_year: a.peaks_within_horizon ? a.peak_year : null,
        peak_value: a.peak_emissions_t / 1e6,
      };
    },
    async synergy(p) {
      const a = await get(`${REPORTS}/enterprises/synergy?${query({ year: p.enterpriseYear })}`);
      return {
        year: a.year,
        industries: a.industries.map((r) => ({
          industry: r.industry,
          suppressed: r.status === "suppressed",
          rank: r.rank,
          enterprises: cell(r.enterprises),
          correlation: r.correlation,
          carbon_median: r.carbon_intensity ? r.carbon_intensity.median : null,
          pollutant_median: r.pollutant_intensity ? r.pollutant_intensity.median : null,
          potential: cell(r.potential),
        })),
      };
    },
    async decision(body) {
      state.decisionQueries += 1;
      state.decisionBody = body; // what was asked (the browser test re-asks the API with it)
      const a = await call("POST", `${REPORTS}/scenarios/decision`, body);
      return {
        years: a.years.map((y) => y.year),
        baseline: a.years.map((y) => y.baseline_t / 1e6),
        emissions: a.years.map((y) => y.emissions_t / 1e6),
        peak_year: a.peak_year,
        target_peak_year: a.target_peak_year,
        peaks_on_time: a.peaks_on_time,
        baseline_peaks_on_time: a.baseline_peaks_on_time,
        gap_t: a.gap_t,
        gap_year: a.gap_year,
      };
    },
  };

  // The scenario: an illustrative city (KAYA_BASE, the base year's levels) and four sliders,
  // each a growth rate in % per year (the API takes fractions).
  const KAYA_BASE = {
    population: 17_800_000, // persons
    gdp_per_capita: 190_000, // yuan per person
    energy_intensity: 0.3, // tce per 10,000 yuan
    carbon_intensity: 2.1, // t CO2 per tce
    years: 30,
    gdp_drift: -0.0015, // GDP per capita growth slows by 0.15 point a year
  };
  const SLIDERS = [
    { param: "population", api: "population_growth", min: -2, max: 3, step: 0.1, value: 0.5 },
    { param: "gdp_per_capita", api: "gdp_growth", min: 0, max: 10, step: 0.1, value: 5.5 },
    { param: "energy_intensity", api: "energy_intensity_growth", min: -8, max: 2, step: 0.1, value: -2.5 },
    { param: "carbon_intensity", api: "carbon_intensity_growth", min: -8, max: 2, step: 0.1, value: -1.5 },
  ];

  function scenarioParams() {
    const out = { base_year: new Date().getFullYear(), ...KAYA_BASE };
    for (const s of SLIDERS) out[s.api] = (Number($(`rate-${s.param}`).value) / 100).toFixed(4);
    return out;
  }

  // The decision panel's body (POST /scenarios/decision): the sliders' path as KayaIn, the
  // target year, one planned project and one substitution when their amounts are not zero.
  function decisionBody() {
    const p = scenarioParams();
    const growth = (base, rate, drift) => ({ base, rate: Number(rate), drift: drift || 0 });
    const number = (id) => Number($(id).value || 0);
    const startYear = Math.trunc(number("decision-project-year")) || p.base_year + 2;
    const startsOn = `${String(startYear).padStart(4, "0")}-01-01`;
    const body = {
      kaya: {
        base_year: p.base_year,
        years: p.years,
        population: growth(p.population, p.population_growth),
        gdp_per_capita: growth(p.gdp_per_capita, p.gdp_growth, p.gdp_drift),
        energy_intensity: growth(p.energy_intensity, p.energy_intensity_growth),
        carbon_intensity: growth(p.carbon_intensity, p.carbon_intensity_growth),
      },
      target_peak_year: Math.trunc(number("decision-target")),
      projects: [],
      substitutions: [],
    };
    if (number("decision-project-t") > 0) {
      body.projects.push({ name: "project", annual_emissions_t: number("decision-project-t"), starts_on: startsOn });
    }
    if (number("decision-added-t") > 0 || number("decision-avoided-t") > 0) {
      body.substitutions.push({
        name: "substitution",
        supplier_added_t: number("decision-added-t"),
        consumers_avoided_t: number("decision-avoided-t"),
        starts_on: startsOn,
      });
    }
    return body;
  }

  async function refreshDecision() {
    try {
      state.data.decision = await load.decision(decisionBody());
      renderDecision(state.data.decision);
    } catch (e) {
      fail("decision", e);
    }
  }

  function buildSliders() {
    const box = $("scenario-controls");
    if (box.childElementCount) return;
    $("decision-project-year").value = String(new Date().getFullYear() + 2);
    for (const s of SLIDERS) {
      const label = document.createElement("label");
      const name = document.createElement("span");
      name.dataset.param = s.param;
      const input = document.createElement("input");
      Object.assign(input, { type: "range", id: `rate-${s.param}`, min: s.min, max: s.max, step: s.step, value: s.value });
      const out = document.createElement("output");
      out.id = `rate-${s.param}-out`;
      out.textContent = `${s.value} %`;
      let timer = null;
      input.addEventListener("input", () => {
        out.textContent = `${input.value} %`;
        clearTimeout(timer);
        timer = setTimeout(() => {
          refreshScenario();
          refreshDecision();
        }, 150);
      });
      label.append(name, input, out);
      box.appendChild(label);
    }
  }

  function labelSliders() {
    for (const el of document.querySelectorAll("#scenario-controls [data-param]")) {
      el.textContent = TEXT[state.lang].params[el.dataset.param] || el.dataset.param;
    }
  }

  async function refreshScenario() {
    try {
      state.data.scenario = await load.scenario(scenarioParams());
      renderScenario(state.data.scenario);
    } catch (e) {
      fail("scenario", e);
    }
  }

  function fail(panel, e) {
    if (e.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn(t("session_expired"));
      return;
    }
    state.errors.push(`${panel}: ${e.message}`);
    const box = $("load-error");
    box.hidden = false;
    box.textContent = `${t("load_failed")}${state.errors.join("; ")}`;
  }

  function renderAll() {
    const d = state.data;
    if (d.totals) renderHeadline(d.totals, d.liability);
    if (d.series) renderSeries(d.series);
    if (d.modes) renderModes(d.modes);
    if (d.geojson && d.districts) renderMap(d.geojson, d.districts);
    if (d.grades) renderGrades(d.grades);
    if (d.index) renderIndex(d.index);
    if (d.scenario) renderScenario(d.scenario);
    if (d.synergy) renderSynergy(d.synergy);
    if (d.decision) renderDecision(d.decision);
    labelSliders();
  }

  async function showDashboard() {
    const s = session();
    if (!s) {
      showSignIn("");
      return;
    }
    $("sign-in").hidden = true;
    $("dashboard").hidden = false;
    $("sign-out").hidden = false;
    $("who").hidden = false;
    $("who").textContent = `${s.login || ""} · ${s.role || ""}`;
    state.ready = false;
    state.errors = [];
    $("load-error").hidden = true;
    buildPeriods();
    buildSliders();
    const p = period();
    $("enterprise-year").textContent = String(p.enterpriseYear);
    const panels = {
      totals: () => load.totals(p),
      liability: () => load.liability(),
      series: () => load.series(),
      modes: () => load.modes(p),
      districts: () => load.districts(p),
      geojson: () => load.geojson(),
      grades: () => load.grades(p),
      index: () => load.index(p),
      scenario: () => load.scenario(scenarioParams()),
      synergy: () => load.synergy(p),
      decision: () => load.decision(decisionBody()),
    };
    await Promise.all(
      Object.entries(panels).map(async ([panel, fetcher]) => {
        try {
          state.data[panel] = await fetcher();
        } catch (e) {
          fail(panel, e);
        }
      })
    );
    if (!session()) return; // signed out by a 401 meanwhile
    renderAll();
    state.ready = state.errors.length === 0;
  }

  function switchLanguage() {
    state.lang = state.lang === "en" ? "zh-CN" : "en";
    sessionStorage.setItem(LANG_KEY, state.lang);
    applyLanguage();
    if (!$("dashboard").hidden) renderAll();
  }

  function start() {
    state.lang = pickLanguage();
    applyLanguage();
    $("sign-in-form").addEventListener("submit", signIn);
    $("decision-form").addEventListener("submit", (e) => {
      e.preventDefault();
      refreshDecision();
    });
    $("sign-out").addEventListener("click", signOut);
    $("lang").addEventListener("click", switchLanguage);
    window.addEventListener("resize", () => {
      for (const c of Object.values(state.charts)) c.resize();
    });
    if (session()) showDashboard();
    else showSignIn("");
  }

  document.addEventListener("DOMContentLoaded", start);
})();
