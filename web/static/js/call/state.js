// The call page's shared state: the one object every call module reads and writes.
// (call.js is the page's entry point; the modules beside this file are its parts.)

export const $ = (id) => document.getElementById(id);

export const state = {
  socket: null, pc: null, local: null, screen: null, iceServers: [], admitted: false,
  ended: false, makingOffer: false, tracksByMid: new Map(), tiles: new Map(), wsAttempt: 0,
  consent: false, speakerId: "", reconnectTimer: null, everConnected: false, guest: false,
};
