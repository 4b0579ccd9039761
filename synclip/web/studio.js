// synclip studio page: upload, follow the job's server-sent events, show the result and its sync chart.
// Plain browser JavaScript, served by synclip itself (nothing from a CDN).
"use strict";

const TEXT = {
  en: {
    title: "synclip studio", mode_dub: "Dub a presenter", mode_score: "Score a video only",
    drop_face: "Presenter video or photo", drop_video: "Video to score", drop_audio: "Recorded voice (optional for scoring)",
    drop_hint: "drop a file here or click to choose", or_text: "- or paste a script -",
    text_placeholder: "Text for the presenter to say", voice_lang: "Voice language", rate: "Rate",
    voice: "Voice", voice_default: "best installed",
    submit: "Start", cancel: "Cancel", source: "Source", result: "Result", jobs: "Jobs",
    download_video: "Download video", download_speech: "Download speech (wav)", download_report: "Download sync report",
    need_face: "Choose a presenter video or photo first.", need_speech: "Drop a voice recording or paste a script.",
    need_video: "Choose a video to score.", uploading: "Uploading...", queued: "Queued", running: "Running", starting: "Starting",
    speech: "Speaking the text", load: "Loading models", dub: "Dubbing", score: "Scoring lip sync",
    done: "Done", failed: "Failed", cancelled: "Cancelled", eta: (s) => `about ${s} s left`,
    summary: (r) => `Sync score ${r.score.toFixed(2)} (${r.score >= 0.5 ? "in sync" : "not in sync"}), ` +
      `offset ${sign(r.offset_frames)} frames (${sign(r.offset_ms)} ms; + = audio leads), confidence ${r.confidence.toFixed(2)}`,
    chart_curve: "Offset search: distance per offset (frames)", chart_seconds: "Sync score per second",
    best: "best", open: "Open", delete: "Delete", no_jobs: "No jobs yet.", dub_kind: "dub", score_kind: "score",
    text_unready: "Text input is not available on this server; drop a voice recording instead.",
    dub_unready: "Dubbing is not ready on this server: ",
  },
  zh: {
    title: "synclip 数字人工作室", mode_dub: "数字人口播", mode_score: "只评估视频的口型同步",
    drop_face: "主播视频或照片", drop_video: "要评估的视频", drop_audio: "录好的语音（评估时可不选）",
    drop_hint: "把文件拖到这里，或点击选择", or_text: "- 或粘贴文稿 -",
    text_placeholder: "要主播说的文字", voice_lang: "语音语言", rate: "语速",
    voice: "声音", voice_default: "已安装的最佳声音",
    submit: "开始", cancel: "取消", source: "原视频", result: "生成结果", jobs: "任务",
    download_video: "下载视频", download_speech: "下载语音（wav）", download_report: "下载同步报告",
    need_face: "请先选择主播视频或照片。", need_speech: "请拖入语音文件或粘贴文稿。",
    need_video: "请选择要评估的视频。", uploading: "正在上传…", queued: "排队中", running: "运行中", starting: "正在启动",
    speech: "正在合成语音", load: "正在加载模型", dub: "正在生成口型", score: "正在评估口型同步",
    done: "完成", failed: "失败", cancelled: "已取消", eta: (s) => `约剩 ${s} 秒`,
    summary: (r) => `同步得分 ${r.score.toFixed(2)}（${r.score >= 0.5 ? "同步" : "不同步"}），` +
      `偏移 ${sign(r.offset_frames)} 帧（${sign(r.offset_ms)} 毫秒；正数 = 声音超前），置信度 ${r.confidence.toFixed(2)}`,
    chart_curve: "偏移搜索：各偏移（帧）的距离", chart_seconds: "每秒的同步得分",
    best: "最佳", open: "打开", delete: "删除", no_jobs: "还没有任务。", dub_kind: "口播", score_kind: "评估",
    text_unready: "此服务器不支持文字输入，请拖入语音文件。",
    dub_unready: "此服务器还不能生成口型：",
  },
};

const $ = (id) => document.getElementById(id);
const state = { lang: pickLang(), files: { face: null, audio: null }, job: null, report: null, events: null, health: null,
  voices: [] };

function sign(v) { return (v > 0 ? "+" : "") + v; }
function t(key, arg) { const v = TEXT[state.lang][key]; return typeof v === "function" ? v(arg) : (v ?? key); }

function pickLang() {
  const saved = localStorage.getItem("synclip-lang");
  if (saved === "zh" || saved === "en") return saved;
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  return String(langs[0]).toLowerCase().startsWith("zh") ? "zh" : "en";
}

function applyLang() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  $("lang-switch").textContent = state.lang === "zh" ? "English" : "中文";
  $("tts-lang").value = state.lang;
  fillVoices();
  applyMode();
  if (state.job) showJob(state.job);
  if (state.report) drawChart(state.report);
  showNotice();
  refreshJobs();
}

function fillVoices() {
  // The voices of the chosen speech language; the first option (the language's best voice) stays.
  const select = $("voice"), lang = $("tts-lang").value;
  while (select.options.length > 1) select.remove(1);
  for (const v of state.voices.filter((x) => x.lang === lang)) {
    const o = document.createElement("option");
    o.value = v.id;
    o.textContent = `${v.description} (${v.id})`;
    select.appendChild(o);
  }
}

function mode() { return document.querySelector("input[name=mode]:checked").value; }

function applyMode() {
  const dub = mode() === "dub";
  document.querySelector("#drop-face .drop-title").textContent = t(dub ? "drop_face" : "drop_video");
  for (const id of ["or-text", "text"]) $(id).hidden = !dub;
  document.querySelectorAll("#speech-box .inline").forEach((el) => { el.hidden = !dub; });
}

function message(text, isError) {
  $("message").textContent = text || "";
  $("message").className = isError ? "error" : "";
}

function showNotice() {
  const h = state.health;
  const parts = [];
  if (h && !h.dub_ready) parts.push(t("dub_unready") + h.dub_problem);
  if (h && !h.text_ready) parts.push(t("text_unready"));
  $("notice").textContent = parts.join(" ");
  $("notice").hidden = parts.length === 0;
}

// ---- choosing files ---------------------------------------------------------------------------------------
function wireDrop(zoneId, inputId, role) {
  const zone = $(zoneId), input = $(inputId);
  const take = (file) => { state.files[role] = file || null; $(role + "-chosen").textContent = file ? file.name : ""; };
  input.addEventListener("change", () => take(input.files[0]));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) take(e.dataTransfer.files[0]);
  });
}

// ---- submitting and following a job ------------------------------------------------------------------------
async function submit() {
  const dub = mode() === "dub";
  const text = $("text").value.trim();
  if (!state.files.face) return message(t(dub ? "need_face" : "need_video"), true);
  if (dub && !state.files.audio && !text) return message(t("need_speech"), true);
  const form = new FormData();
  form.append(dub ? "face" : "video", state.files.face);
  if (state.files.audio) form.append("audio", state.files.audio);
  else if (dub) {
    form.append("text", text);
    form.append("lang", $("tts-lang").value);
    form.append("rate", $("rate").value);
    if ($("voice").value) form.append("voice", $("voice").value);
  }
  message(t("uploading"));
  $("submit").disabled = true;
  try {
    const res = await fetch(dub ? "/jobs" : "/score", { method: "POST", body: form });
    const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
    if (!res.ok) return message(body.error || `HTTP ${res.status}`, true);
    message("");
    follow(body);
  } catch (err) {
    message(String(err), true);
  } finally {
    $("submit").disabled = false;
  }
}

function follow(job) {
  if (state.events) state.events.close();
  state.report = null;
  $("result-panel").hidden = true;
  showJob(job);
  const events = new EventSource(`/jobs/${job.id}/events`);
  state.events = events;
  events.addEventListener("progress", (e) => {
    const j = JSON.parse(e.data);
    showJob(j);
    if (["done", "failed", "cancelled"].includes(j.status)) {
      events.close();
      finished(j);
    }
  });
  events.onerror = () => { if (events.readyState === EventSource.CLOSED) state.events = null; };
}

function showJob(job) {
  state.job = job;
  $("progress-panel").hidden = false;
  $("progress-panel").dataset.status = job.status;
  $("bar-fill").style.width = `${job.percent}%`;
  const label = job.status === "running" ? t(job.stage) : t(job.status);
  $("stage").textContent = label;
  $("percent").textContent = `${Math.round(job.percent)}%`;
  $("eta").textContent = job.status === "running" && job.eta_s != null ? t("eta", Math.ceil(job.eta_s)) : "";
  $("cancel").hidden = !["queued", "running"].includes(job.status);
  if (job.status === "failed") message(job.error, true);
}

async function finished(job) {
  refreshJobs();
  if (job.status === "done") await showResult(job);
}

async function showResult(job) {
  state.job = job;
  const files = job.files || {};
  const view = $("source-view");
  view.textContent = "";
  const src = document.createElement(job.params.source_kind === "image" ? "img" : "video");
  src.src = files.source;
  if (src.tagName === "VIDEO") { src.controls = true; src.preload = "auto"; }
  src.id = "source-media";
  view.appendChild(src);
  $("result-figure").hidden = !files.result;
  if (files.result) $("result-video").src = files.result;
  for (const [id, role] of [["dl-video", "result"], ["dl-speech", "speech"], ["dl-report", "report"]]) {
    $(id).hidden = !files[role];
    if (files[role]) $(id).href = files[role];
  }
  $("result-panel").hidden = false;
  state.report = null;
  $("summary").textContent = "";
  if (files.report) {
    const res = await fetch(files.report);
    if (res.ok) {
      state.report = await res.json();
      drawChart(state.report);
    }
  }
}

// ---- the sync chart: offset search curve (left) and score per second (right), drawn on one canvas ---------
function drawChart(report) {
  const r = report;
  if (r.score != null) {
    $("summary").textContent = t("summary", r);
    $("summary").className = r.score >= 0.5 ? "good" : "poor";
  } else {
    $("summary").textContent = r.error || "";
    $("summary").className = "poor";
  }
  const canvas = $("chart"), ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, half = W / 2;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  ctx.font = "13px system-ui, sans-serif";
  const curve = r.curve || { offsets: [], distances: [] };
  const pts = curve.offsets.map((o, i) => [o, curve.distances[i]]).filter((p) => p[1] != null);
  drawPanel(ctx, { x: 10, y: 10, w: half - 20, h: H - 20 }, t("chart_curve"), pts, "line", r.offset_frames);
  const secs = (r.per_second || []).map((v, i) => [i, v]);
  drawPanel(ctx, { x: half + 10, y: 10, w: half - 20, h: H - 20 }, t("chart_seconds"), secs, "bars", null);
  canvas.dataset.drawn = String(pts.length + secs.length);
}

function drawPanel(ctx, box, title, pts, kind, best) {
  const pad = { l: 58, r: 10, t: 26, b: 28 };
  const x0 = box.x + pad.l, y0 = box.y + pad.t, w = box.w - pad.l - pad.r, h = box.h - pad.t - pad.b;
  ctx.fillStyle = "#1d2330";
  ctx.fillText(title, box.x + 4, box.y + 14);
  if (!pts.length) return;
  const xs = pts.map((p) => p[0]);
  const vals = pts.map((p) => p[1]).filter((v) => v != null);
  let lo = kind === "bars" ? 0 : Math.min(...vals), hi = kind === "bars" ? 1 : Math.max(...vals);
  if (hi - lo < 1e-9) { hi = lo + 1; }
  const xmin = Math.min(...xs), xmax = Math.max(...xs) + (kind === "bars" ? 1 : 0);
  const X = (v) => x0 + ((v - xmin) / Math.max(xmax - xmin, 1e-9)) * w;
  const Y = (v) => y0 + h - ((v - lo) / (hi - lo)) * h;
  ctx.strokeStyle = "#98a2b3";
  ctx.lineWidth = 1;
  ctx.strokeRect(x0, y0, w, h);
  ctx.fillStyle = "#667085";
  ctx.textAlign = "right";
  const digits = Math.min(6, Math.max(2, Math.ceil(-Math.log10(hi - lo)) + 1));  // ticks that differ
  for (const v of [lo, (lo + hi) / 2, hi]) ctx.fillText(v.toFixed(digits), x0 - 4, Y(v) + 4);
  ctx.textAlign = "center";
  const step = Math.max(1, Math.ceil((xmax - xmin) / 6));
  for (let v = Math.ceil(xmin); v <= xmax - (kind === "bars" ? 1 : 0); v += step) {
    ctx.fillText(kind === "bars" ? `${v}s` : String(v), X(kind === "bars" ? v + 0.5 : v), y0 + h + 16);
  }
  ctx.textAlign = "left";
  if (kind === "bars") {
    ctx.strokeStyle = "#c0362c";
    ctx.setLineDash([4, 4]);
    ctx.beginPath(); ctx.moveTo(x0, Y(0.5)); ctx.lineTo(x0 + w, Y(0.5)); ctx.stroke();
    ctx.setLineDash([]);
    const bw = Math.max(2, w / (xmax - xmin) - 4);
    for (const [x, v] of pts) {
      if (v == null) continue;
      ctx.fillStyle = v >= 0.5 ? "#1f8a4c" : "#c0362c";
      ctx.fillRect(X(x) + 2, Y(v), bw, Y(lo) - Y(v));
    }
    return;
  }
  ctx.strokeStyle = "#2f6fde";
  ctx.lineWidth = 2;
  ctx.beginPath();
  pts.forEach(([x, v], i) => (i ? ctx.lineTo(X(x), Y(v)) : ctx.moveTo(X(x), Y(v))));
  ctx.stroke();
  const min = pts.find((p) => p[0] === best) || pts.reduce((a, b) => (b[1] < a[1] ? b : a));
  ctx.fillStyle = "#c0362c";
  ctx.beginPath(); ctx.arc(X(min[0]), Y(min[1]), 5, 0, 2 * Math.PI); ctx.fill();
  ctx.fillText(`${t("best")} ${sign(min[0])}`, Math.min(X(min[0]) + 8, x0 + w - 60), Y(min[1]) - 8);
}

// ---- the job list --------------------------------------------------------------------------------------------
async function refreshJobs() {
  let jobs = [];
  try { jobs = (await (await fetch("/jobs")).json()).jobs || []; } catch (err) { return; }
  const list = $("jobs");
  list.textContent = "";
  if (!jobs.length) { const li = document.createElement("li"); li.textContent = t("no_jobs"); list.appendChild(li); }
  for (const job of jobs) {
    const li = document.createElement("li");
    li.dataset.id = job.id;
    const when = new Date(job.created * 1000).toLocaleString(state.lang === "zh" ? "zh-CN" : "en");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `${when} · ${t(job.kind + "_kind")} · ${job.params.source_name || ""}`;
    name.title = job.error || "";
    const status = document.createElement("span");
    status.className = `status-${job.status}`;
    status.textContent = t(job.status);
    li.append(name, status);
    if (job.status === "done") li.appendChild(button(t("open"), () => { showJob(job); showResult(job); }));
    if (["done", "failed", "cancelled"].includes(job.status)) {
      li.appendChild(button(t("delete"), async () => { await fetch(`/jobs/${job.id}`, { method: "DELETE" }); refreshJobs(); }));
    }
    list.appendChild(li);
  }
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

// ---- start ---------------------------------------------------------------------------------------------------
wireDrop("drop-face", "face-file", "face");
wireDrop("drop-audio", "audio-file", "audio");
document.querySelectorAll("input[name=mode]").forEach((el) => el.addEventListener("change", applyMode));
$("submit").addEventListener("click", submit);
$("cancel").addEventListener("click", () => { if (state.job) fetch(`/jobs/${state.job.id}/cancel`, { method: "POST" }); });
$("lang-switch").addEventListener("click", () => {
  state.lang = state.lang === "zh" ? "en" : "zh";
  localStorage.setItem("synclip-lang", state.lang);
  applyLang();
});
fetch("/health").then((r) => r.json()).then((h) => { state.health = h; showNotice(); }).catch(() => {});
fetch("/voices").then((r) => r.json()).then((v) => { state.voices = v.voices || []; fillVoices(); }).catch(() => {});
$("tts-lang").addEventListener("change", fillVoices);
applyLang();
