// The consultation call page: device check, waiting room, one RTCPeerConnection with the
// relay (which forwards everyone else's media), chat, notes, recording consent, screen
// share, a quality indicator, and reconnection after a network drop.
//
// Signalling speaks the versioned protocol of the `signalling` package over /ws/signal.
// The relay is the impolite peer: when offers collide this page rolls its own back.

const root = document.getElementById("call");
const $ = (id) => document.getElementById(id);
const VERSION = 1;

if (root) start();

function start() {
  const appointment = root.dataset.appointment;
  const role = root.dataset.role;
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const state = {
    socket: null, pc: null, local: null, screen: null, iceServers: [], admitted: false,
    ended: false, makingOffer: false, tracksByMid: new Map(), tiles: new Map(), wsAttempt: 0,
    consent: false, speakerId: "", reconnectTimer: null, everConnected: false,
  };
  window.caretrackCall = { state, inboundVideo };

  // --- before joining: see and hear yourself, pick devices ----------------------------------
  const preview = $("preview");
  const selects = { videoinput: $("camera-select"), audioinput: $("mic-select"), audiooutput: $("speaker-select") };

  async function acquire() {
    const constraints = {
      audio: selects.audioinput.value ? { deviceId: { exact: selects.audioinput.value } } : true,
      video: selects.videoinput.value ? { deviceId: { exact: selects.videoinput.value }, width: 640, height: 480 }
        : { width: 640, height: 480 },
    };
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      if (state.local) state.local.getTracks().forEach((t) => t.stop());
      state.local = stream;
      preview.srcObject = stream;
      $("self-view").srcObject = stream;
      meter(stream);
      warn("");
      await listDevices();
      if (state.pc) replaceLocalTracks();
    } catch (err) {
      warn(`Your camera or microphone could not be used (${err.name}). Check that no other app is using it and that this site may use it.`);
    }
  }

  async function listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    for (const [kind, select] of Object.entries(selects)) {
      const current = select.value;
      select.replaceChildren();
      devices.filter((d) => d.kind === kind).forEach((d, i) => {
        select.append(new Option(d.label || `${kind} ${i + 1}`, d.deviceId, false, d.deviceId === current));
      });
      select.disabled = select.options.length === 0;
    }
  }

  let meterContext = null;
  function meter(stream) {
    if (!stream.getAudioTracks().length) return;
    meterContext?.close();
    meterContext = new AudioContext();
    const analyser = meterContext.createAnalyser();
    meterContext.createMediaStreamSource(stream).connect(analyser);
    const data = new Uint8Array(analyser.fftSize);
    const tick = () => {
      if (meterContext?.state === "closed") return;
      analyser.getByteTimeDomainData(data);
      let peak = 0;
      for (const v of data) peak = Math.max(peak, Math.abs(v - 128) / 128);
      $("mic-level").value = peak;
      requestAnimationFrame(tick);
    };
    tick();
  }

  selects.videoinput.addEventListener("change", acquire);
  selects.audioinput.addEventListener("change", acquire);
  selects.audiooutput.addEventListener("change", () => {
    state.speakerId = selects.audiooutput.value;
    document.querySelectorAll("#videos video, #videos audio").forEach((el) => el.setSinkId?.(state.speakerId));
  });
  navigator.mediaDevices.addEventListener?.("devicechange", listDevices);
  acquire();

  $("join-button").addEventListener("click", () => {
    $("join-button").disabled = true;
    connect();
  });

  // --- signalling ---------------------------------------------------------------------------
  function send(message) {
    if (state.socket?.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify({ v: VERSION, ...message }));
  }

  function connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/signal`;
    const socket = new WebSocket(url);
    state.socket = socket;
    socket.addEventListener("open", () => {
      state.wsAttempt = 0;
      send({ type: "join", consultation: appointment });
    });
    socket.addEventListener("message", (e) => {
      let message;
      try { message = JSON.parse(e.data); } catch { return; }
      handle(message).catch((err) => console.error("signalling", message.type, err));
    });
    socket.addEventListener("close", (e) => {
      if (state.socket !== socket) return;
      if (state.ended || [1000, 4000, 4401, 4403, 4409].includes(e.code)) {
        if (!state.ended && e.code !== 4000) finish(e.reason || "You cannot join this consultation.");
        return;
      }
      warn("The connection to the server dropped; reconnecting…");
      setLive("Reconnecting…");
      closePeer();
      const delay = Math.min(15000, 500 * 2 ** state.wsAttempt++) * (0.5 + Math.random() / 2);
      setTimeout(connect, delay);
    });
  }

  async function handle(message) {
    switch (message.type) {
      case "welcome":
        state.iceServers = (message.ice_servers || []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential }));
        $("prejoin").hidden = true;
        if (message.admitted) await admitted();
        break;
      case "waiting":
        $("waiting").hidden = false;
        $("waiting-text").textContent = message.host_present
          ? "The doctor knows you are here and will let you in shortly."
          : "The doctor has not joined yet. Please wait here.";
        break;
      case "admitted":
        await admitted();
        break;
      case "lobby":
        renderLobby(message.waiting || []);
        break;
      case "offer":
        for (const [mid, info] of Object.entries(message.tracks || {})) state.tracksByMid.set(mid, info);
        await onRemoteOffer(message.sdp);
        break;
      case "answer":
        if (state.pc && state.pc.signalingState === "have-local-offer") {
          await state.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
        }
        break;
      case "participants":
        renderParticipants(message.participants || []);
        break;
      case "chat":
        addChat(message);
        break;
      case "recording":
        $("recording-banner").hidden = !message.on;
        break;
      case "error":
        if (message.code !== 4400 || message.about !== "answer") warn(message.message);
        break;
      case "ended":
        finish(message.reason || "The doctor ended the consultation.");
        break;
      case "ping":
        send({ type: "pong" });
        break;
    }
  }

  async function admitted() {
    state.admitted = true;
    $("waiting").hidden = true;
    $("stage").hidden = false;
    if (role === "host") { $("lobby").hidden = false; loadNotes(); loadRecordings(); }
    loadChat();
    if (!state.local) await acquire();
    openPeer();
  }

  // --- the peer connection with the relay ----------------------------------------------------
  function openPeer() {
    closePeer();
    const pc = new RTCPeerConnection({ iceServers: state.iceServers });
    state.pc = pc;
    state.tracksByMid.clear();
    state.local?.getTracks().forEach((track) => pc.addTrack(track, state.local));
    if (state.screen) state.screen.getTracks().forEach((track) => pc.addTrack(track, state.screen));
    pc.addEventListener("negotiationneeded", () => offer(pc));
    pc.addEventListener("track", (e) => showTrack(e));
    pc.addEventListener("iceconnectionstatechange", () => {
      const s = pc.iceConnectionState;
      if (s === "connected" || s === "completed") {
        state.everConnected = true;
        clearTimeout(state.reconnectTimer);
        setLive("");
        warn("");
      } else if (s === "disconnected" || s === "failed") {
        setLive("Reconnecting…");
        clearTimeout(state.reconnectTimer);
        // A brief blip heals itself; past that, a fresh connection (new ICE) with the relay.
        state.reconnectTimer = setTimeout(() => {
          if (state.pc === pc && !state.ended) openPeer();
        }, s === "failed" ? 0 : 3000);
      }
    });
  }

  function closePeer() {
    if (!state.pc) return;
    state.pc.close();
    state.pc = null;
    for (const tile of state.tiles.values()) tile.remove();
    state.tiles.clear();
  }

  async function waitForCandidates(pc) {
    if (pc.iceGatheringState === "complete") return;
    await new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 3000);
    });
  }

  async function offer(pc) {
    if (pc !== state.pc || state.makingOffer) return;
    try {
      state.makingOffer = true;
      await pc.setLocalDescription();
      await waitForCandidates(pc);
      if (pc === state.pc && pc.signalingState === "have-local-offer") {
        send({ type: "offer", sdp: pc.localDescription.sdp });
      }
    } finally {
      state.makingOffer = false;
    }
  }

  async function onRemoteOffer(sdp) {
    const pc = state.pc;
    if (!pc) return;
    // The relay wins collisions: setRemoteDescription rolls back our pending offer.
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription();
    await waitForCandidates(pc);
    if (pc === state.pc) send({ type: "answer", sdp: pc.localDescription.sdp });
    // Anything of ours the rollback undid is offered again.
    if (pc.getTransceivers().some((t) => t.sender.track && !t.mid)) offer(pc);
  }

  function replaceLocalTracks() {
    for (const sender of state.pc.getSenders()) {
      const fresh = state.local.getTracks().find((t) => sender.track && t.kind === sender.track.kind && !isScreen(sender.track));
      if (fresh) sender.replaceTrack(fresh);
    }
  }

  const isScreen = (track) => state.screen?.getTracks().includes(track);

  function showTrack(e) {
    const mid = e.transceiver.mid;
    const info = state.tracksByMid.get(mid) || {};
    const participant = info.participant || e.streams[0]?.id || "someone";
    const key = `${mid}`;
    state.tiles.get(key)?.remove();
    let tile;
    if (e.track.kind === "audio") {
      tile = document.createElement("audio");
      tile.autoplay = true;
      tile.srcObject = new MediaStream([e.track]);
      if (state.speakerId) tile.setSinkId?.(state.speakerId);
      tile.hidden = true;
      $("videos").append(tile);
    } else {
      tile = document.createElement("figure");
      tile.className = "tile";
      tile.dataset.participant = participant;
      tile.dataset.mid = mid;
      const video = document.createElement("video");
      video.autoplay = true;
      video.playsInline = true;
      video.muted = true;
      video.srcObject = new MediaStream([e.track]);
      const caption = document.createElement("figcaption");
      caption.textContent = nameOf(participant) + (info.track === "screen" ? " (screen)" : "");
      tile.append(video, caption);
      $("videos").append(tile);
    }
    state.tiles.set(key, tile);
    e.track.addEventListener("ended", () => { tile.remove(); state.tiles.delete(key); });
  }

  // --- the people in the call ----------------------------------------------------------------
  const names = new Map();
  const nameOf = (participant) => names.get(participant) || "Participant";

  function renderParticipants(list) {
    for (const p of list) names.set(p.participant, p.name);
    document.querySelectorAll(".tile[data-participant] figcaption").forEach((caption) => {
      const tile = caption.parentElement;
      const info = state.tracksByMid.get(tile.dataset.mid) || {};
      caption.textContent = nameOf(tile.dataset.participant) + (info.track === "screen" ? " (screen)" : "");
    });
  }

  function renderLobby(waiting) {
    const list = $("lobby-list");
    list.replaceChildren();
    if (!waiting.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "Nobody is waiting.";
      list.append(li);
      return;
    }
    for (const w of waiting) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = `Admit ${w.name}`;
      button.addEventListener("click", () => send({ type: "admit", participant: w.participant }));
      li.append(`${w.name} (${w.role}) `, button);
      list.append(li);
    }
  }

  // --- controls ------------------------------------------------------------------------------
  function toggle(button, kind, type) {
    button.addEventListener("click", () => {
      const off = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", String(off));
      state.local?.getTracks().filter((t) => t.kind === kind).forEach((t) => { t.enabled = !off; });
      button.textContent = off ? (kind === "audio" ? "Unmute" : "Camera on") : (kind === "audio" ? "Mute" : "Camera off");
      send({ type: "media_state", audio: $("mute-button").getAttribute("aria-pressed") !== "true",
             video: $("camera-button").getAttribute("aria-pressed") !== "true" });
    });
  }
  toggle($("mute-button"), "audio");
  toggle($("camera-button"), "video");

  $("share-button").addEventListener("click", async () => {
    if (state.screen) return stopShare();
    try {
      state.screen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (err) {
      warn(`Screen sharing did not start (${err.name}).`);
      return;
    }
    const [track] = state.screen.getVideoTracks();
    track.addEventListener("ended", stopShare);
    state.pc?.addTrack(track, state.screen);
    $("share-button").setAttribute("aria-pressed", "true");
    $("share-button").textContent = "Stop sharing";
    send({ type: "screen_share", active: true });
  });

  function stopShare() {
    if (!state.screen) return;
    const tracks = state.screen.getTracks();
    state.pc?.getSenders().filter((s) => tracks.includes(s.track)).forEach((s) => state.pc.removeTrack(s));
    tracks.forEach((t) => t.stop());
    state.screen = null;
    $("share-button").setAttribute("aria-pressed", "false");
    $("share-button").textContent = "Share screen";
    send({ type: "screen_share", active: false });
  }

  $("consent-box").addEventListener("change", (e) => send({ type: "recording_consent", granted: e.target.checked }));
  if (role === "guest") $("consent-box").parentElement.hidden = true;

  $("leave-button").addEventListener("click", () => {
    send({ type: "leave" });
    finish("You left the consultation. You can rejoin from this page while it is open.");
  });
  $("end-button")?.addEventListener("click", () => {
    if (confirm("End the consultation for everyone?")) send({ type: "end" });
  });

  // --- chat, notes, recordings, guests ---------------------------------------------------------
  function addChat(m) {
    if (document.querySelector(`#chat-log li[data-id="${CSS.escape(String(m.id))}"]`)) return;
    const li = document.createElement("li");
    li.dataset.id = m.id;
    const who = document.createElement("strong");
    who.textContent = `${m.name}: `;
    li.append(who, m.text);
    $("chat-log").append(li);
  }

  async function api(path, options = {}) {
    const response = await fetch(`/api/v1/consultations/${appointment}${path}`, {
      ...options, headers: { "content-type": "application/json", "x-csrf-token": csrf, ...(options.headers || {}) },
    });
    const body = response.status === 204 ? null : await response.json();
    if (!response.ok) throw new Error(body?.error?.message || response.statusText);
    return body;
  }

  async function loadChat() {
    try { (await api("/chat")).messages.forEach(addChat); } catch (err) { warn(err.message); }
  }

  $("chat-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("chat-text").value.trim();
    if (!text) return;
    send({ type: "chat", text });
    $("chat-text").value = "";
  });

  let notesTimer = null;
  async function loadNotes() {
    try { $("notes").value = (await api("/notes")).text; } catch (err) { warn(err.message); }
  }
  $("notes")?.addEventListener("input", () => {
    $("notes-status").textContent = "Saving…";
    clearTimeout(notesTimer);
    notesTimer = setTimeout(async () => {
      try {
        await api("/notes", { method: "PUT", body: JSON.stringify({ text: $("notes").value }) });
        $("notes-status").textContent = "Saved.";
      } catch (err) { $("notes-status").textContent = `Not saved: ${err.message}`; }
    }, 800);
  });

  async function loadRecordings() {
    try {
      const list = $("recordings");
      list.replaceChildren();
      for (const r of (await api("/recordings")).recordings) {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = r.download_url;
        a.textContent = `Recording ${r.id} (${Math.round(r.size_bytes / 1024)} KiB)`;
        li.append(a);
        list.append(li);
      }
    } catch (err) { warn(err.message); }
  }

  $("guest-form")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const { link } = await api("/guest-invites", { method: "POST", body: JSON.stringify({ label: $("guest-label").value }) });
      $("guest-link").textContent = link;
    } catch (err) { warn(err.message); }
  });

  // --- quality, warnings, the end ----------------------------------------------------------------
  async function inboundVideo() {
    if (!state.pc) return [];
    const stats = await state.pc.getStats();
    const out = [];
    stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") out.push({ mid: s.mid, framesDecoded: s.framesDecoded || 0 }); });
    return out;
  }

  setInterval(async () => {
    if (!state.pc) return;
    const stats = await state.pc.getStats();
    let rtt = null; let lost = 0; let received = 0;
    stats.forEach((s) => {
      if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) rtt = s.currentRoundTripTime;
      if (s.type === "inbound-rtp") { lost += s.packetsLost || 0; received += s.packetsReceived || 0; }
    });
    const loss = received ? lost / (lost + received) : 0;
    const quality = rtt === null ? "connecting…" : (loss > 0.05 || rtt > 0.4) ? "poor connection"
      : (loss > 0.01 || rtt > 0.15) ? "fair connection" : "good connection";
    const badge = $("quality");
    badge.textContent = quality;
    badge.className = `badge ${quality.startsWith("good") ? "ok" : quality.startsWith("fair") ? "warn" : quality.startsWith("poor") ? "bad" : ""}`;
  }, 2000);

  function warn(text) {
    const el = $("call-warning");
    el.textContent = text;
    el.hidden = !text;
  }

  function setLive(text) {
    const el = document.getElementById("live-status");
    if (el) { el.textContent = text; el.hidden = !text; }
  }

  function finish(text) {
    state.ended = true;
    closePeer();
    state.socket?.close(1000);
    state.local?.getTracks().forEach((t) => t.stop());
    state.screen?.getTracks().forEach((t) => t.stop());
    $("stage").hidden = true;
    $("waiting").hidden = true;
    $("prejoin").hidden = true;
    $("ended").hidden = false;
    $("ended-text").textContent = text;
  }
}
