// Cloud Advisor web client: application state and controller.
// Wire contract: docs/protocol.md. Untrusted text is only ever rendered as text (see render.js).

import { t, getLang, setLang, onLangChange, applyI18n } from './i18n.js';
import { ApiError, Realtime, session, login as apiLogin, getMe, acceptInvitation, getTickets, setTicketStatus } from './api.js';
import {
  h, clear, avatar, stageBadge, roomItem, messageItem, pendingItem, memberItem, updateReceipt, snippet, shortTime, fullTime,
  ticketItem,
} from './render.js';
import {
  EXPERT_PRODUCTS, productLabel, sessionBadge, boardColumns, consoleSessionItems, consoleQueueColumns, ratingStars, starsText,
} from './desk.js';

const PAGE_SIZE = 50;
const CATCH_UP_PAGE = 100;
const TYPING_SEND_INTERVAL_MS = 3000;   // re-announce "typing" at most this often
const TYPING_IDLE_MS = 4000;            // after this long without input we say "stopped"
const TYPING_EXPIRE_MS = 6000;          // others' indicators older than this are dropped
const NEAR_TOP_PX = 120;
// The server closes a connection whose packet exceeds max_packet_bytes (default 65,536). A text that
// big can never be accepted (the text limits are far lower), so it is refused here, without sending.
const MAX_TEXT_BYTES_ON_WIRE = 60000;
const NEAR_BOTTOM_PX = 80;
const DESK_RELOAD_DEBOUNCE_MS = 150;
// Admins see every project but hear room_updated only for rooms they are in, and staff who are not experts
// hear no expert_queue: their board / console is polled while shown.
const DESK_POLL_MS = 20000;
const SESSION_FETCH_CONCURRENCY = 4;

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/** @type {{me:any, rt:Realtime|null, rooms:Map<string, any>, openRoomId:string|null, connectedOnce:boolean, filter:string}} */
const state = {
  me: null,
  rt: null,
  rooms: new Map(),
  openRoomId: null,
  connectedOnce: false,
  filter: '',
  membersOpen: !window.matchMedia('(max-width: 900px)').matches,
  view: 'chat',            // 'chat' | 'board' | 'console'
  sessions: new Map(),     // expert room id -> Session (docs/protocol.md "Session")
  board: { projects: null, loading: false, error: '', gen: 0, timer: null },
  console: { data: null, loading: false, error: '', gen: 0, timer: null },
  justTransferred: null,   // room id of a session I am handing over (its room_removed is expected)
  ratingPick: 0,
};

function newRoomState(room) {
  return {
    room,
    msgs: new Map(),        // seq -> Message (loaded, contiguous window; gaps only where the server hides internal notes)
    idToSeq: new Map(),     // message id -> seq
    loaded: false,          // newest page fetched
    loading: false,         // newest page in flight (live messages are kept meanwhile)
    hasOlder: false,
    loadingOlder: false,
    olderError: false,
    catchingUp: null,       // promise of a running catch-up
    catchUpAgain: false,
    members: null,          // Map userId -> Member
    tickets: null,          // Map number -> Ticket (docs/protocol.md), kept live by ticket_updated
    reads: new Map(),       // userId -> last read seq (from `read` events / members)
    typing: new Map(),      // userId -> {name, until}
    pending: new Map(),     // client_msg_id -> {clientMsgId, text, replyTo, internal, status, error}
    localUnread: new Set(), // seqs counted as unread locally since the last list_rooms
    marking: false,
    markAgain: false,
    draft: '',
    replyTo: null,
    removed: false,
  };
}

function roomState(id) {
  return state.rooms.get(id) || null;
}

function openRoom() {
  return state.openRoomId ? roomState(state.openRoomId) : null;
}

function maxSeq(rs) {
  let m = 0;
  for (const s of rs.msgs.keys()) if (s > m) m = s;
  return m;
}

function minSeq(rs) {
  let m = Infinity;
  for (const s of rs.msgs.keys()) if (s < m) m = s;
  return m === Infinity ? null : m;
}

function isMine(msg) {
  return !!(state.me && msg && msg.sender && msg.sender.id === state.me.id);
}

function isAdmin() {
  return !!(state.me && Array.isArray(state.me.roles) && state.me.roles.includes('admin'));
}

function isStaff() {
  return !!(state.me && state.me.kind === 'staff');
}

/** Do I take expert sessions (and so hear expert_queue)? Mirrors the server's is_expert. */
function isExpertMe() {
  const me = state.me;
  return !!(me && me.kind === 'staff' && (me.roles || []).includes('solution_expert')
    && (me.skills || []).length > 0 && (me.max_sessions || 0) > 0);
}

function pageVisible() {
  return document.visibilityState === 'visible';
}

function errorText(err) {
  if (err instanceof ApiError) {
    const key = `error.${err.code}`;
    const tr = t(key);
    if (tr !== key) return tr;
    return err.message || err.code;
  }
  return String((err && err.message) || err);
}

function tooBigForWire(text) {
  return new TextEncoder().encode(text).length > MAX_TEXT_BYTES_ON_WIRE;
}

function newClientMsgId() {
  if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
  // Fallback for non-secure contexts (plain http on an intranet host name): RFC 4122 v4 from getRandomValues.
  const b = window.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---------------------------------------------------------------------------------------------
// Views: login / app
// ---------------------------------------------------------------------------------------------

function showLogin(noticeKey) {
  $('app-view').hidden = true;
  $('login-view').hidden = false;
  $('login-lang-slot').appendChild($('lang-switch'));
  const notice = $('login-notice');
  if (noticeKey) {
    notice.dataset.i18n = noticeKey;
    notice.textContent = t(noticeKey);
    notice.hidden = false;
  } else {
    delete notice.dataset.i18n;
    notice.hidden = true;
  }
  $('login-error').hidden = true;
  $('login-password').value = '';
  setLoginBusy(false);
  const user = $('login-username');
  (user.value ? $('login-password') : user).focus();
}

// ---- invitation: #invite=<token> from the email sets a password, then signs in ----

let inviteToken = null;

/** The token of an invitation link, taken out of the address (so it stays out of history and bookmarks). */
function takeInviteToken() {
  const m = /^#invite=([A-Za-z0-9_-]{1,256})$/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, '', location.pathname + location.search);
  return m[1];
}

function showInvite() {
  $('app-view').hidden = true;
  $('login-view').hidden = false;
  $('login-form').hidden = true;
  $('invite-form').hidden = false;
  $('invite-lang-slot').appendChild($('lang-switch'));
  $('invite-error').hidden = true;
  $('invite-password').focus();
}

function leaveInvite() {
  inviteToken = null;
  $('invite-form').hidden = true;
  $('invite-password').value = '';
  $('invite-confirm').value = '';
  $('login-form').hidden = false;
}

function showInviteError(key, params) {
  const el = $('invite-error');
  if (params) delete el.dataset.i18n; else el.dataset.i18n = key;
  el.textContent = t(key, params);
  el.hidden = false;
}

async function onInviteSubmit(ev) {
  ev.preventDefault();
  const password = $('invite-password').value;
  if (password.length < 8) { showInviteError('invite.error.short'); return; }
  if (password !== $('invite-confirm').value) { showInviteError('invite.error.mismatch'); return; }
  const btn = $('invite-submit');
  btn.disabled = true;
  $('invite-error').hidden = true;
  try {
    const res = await acceptInvitation(inviteToken, password);
    session.save(res.token, res.user);
    leaveInvite();
    $('login-username').value = res.user.username;
    await startSession();
  } catch (err) {
    const known = ['invitation_used', 'invitation_expired', 'invitation_invalid', 'network', 'rate_limited'];
    if (err instanceof ApiError && known.includes(err.code)) showInviteError(`invite.error.${err.code}`);
    else showInviteError('invite.error.generic', { message: errorText(err) });
  } finally {
    btn.disabled = false;
  }
}

function showApp() {
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('app-lang-slot').appendChild($('lang-switch'));
}

function setLoginBusy(busy) {
  const btn = $('login-submit');
  btn.disabled = busy;
  btn.dataset.i18n = busy ? 'login.submitting' : 'login.submit';
  btn.textContent = t(btn.dataset.i18n);
}

function showLoginError(key, params) {
  const el = $('login-error');
  if (params) delete el.dataset.i18n; else el.dataset.i18n = key;
  el.textContent = t(key, params);
  el.hidden = false;
}

async function onLoginSubmit(ev) {
  ev.preventDefault();
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  if (!username || !password) {
    showLoginError('login.error.credentials');
    return;
  }
  setLoginBusy(true);
  $('login-error').hidden = true;
  try {
    const res = await apiLogin(username, password);
    session.save(res.token, res.user);
    $('login-password').value = '';
    $('login-notice').hidden = true;
    await startSession();
  } catch (err) {
    setLoginBusy(false);
    if (err instanceof ApiError && (err.code === 'unauthorized' || err.status === 401)) {
      showLoginError('login.error.credentials');
    } else if (err instanceof ApiError && err.code === 'network') {
      showLoginError('login.error.network');
    } else {
      showLoginError('login.error.generic', { message: errorText(err) });
    }
    $('login-password').select();
  }
}

/** Leave the session: close the socket, forget everything, go to the login form. */
function logout(noticeKey) {
  if (state.rt) {
    try { state.rt.close(); } catch { /* ignore */ }
  }
  stopTypingNow(false);
  state.rt = null;
  state.me = null;
  state.rooms = new Map();
  state.openRoomId = null;
  state.connectedOnce = false;
  resetDesk();
  session.clear();
  // Drop every piece of the previous user's data from the page.
  clear($('room-list'));
  clear($('message-items'));
  clear($('pending-items'));
  clear($('member-list'));
  clear($('ticket-list'));
  $('ticket-error').textContent = '';
  $('message-input').value = '';
  $('chat-room').hidden = true;
  $('chat-placeholder').hidden = false;
  $('chat-notice').hidden = true;
  document.title = t('app.name');
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  showLogin(noticeKey);
}

function handleAuthFailure(err) {
  if (err instanceof ApiError && err.code === 'unauthorized') {
    logout('login.sessionExpired');
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Session & socket
// ---------------------------------------------------------------------------------------------

async function startSession() {
  const token = session.token;
  if (!token) { showLogin(); return; }
  showApp();
  setConn('connecting');
  try {
    const res = await getMe();
    state.me = res.user;
    session.setUser(res.user);
  } catch (err) {
    if (handleAuthFailure(err)) return;
    // Server unreachable: work with the cached identity and let the socket retry.
    state.me = session.user;
    if (!state.me) { logout(); return; }
  }
  renderMe();
  $('internal-toggle').hidden = state.me.kind !== 'staff';
  renderNav();

  const rt = new Realtime(token);
  state.rt = rt;
  bindSocket(rt);
  rt.connect();
}

function bindSocket(rt) {
  const s = rt.socket;
  s.on('connect', () => { if (state.rt === rt) onConnected(); });
  s.on('disconnect', (reason) => {
    if (state.rt !== rt) return;
    setConn('offline');
    for (const rs of state.rooms.values()) rs.typing.clear();
    renderTyping();
    if (reason === 'io server disconnect') {
      // The server closed us (e.g. account disabled, or shutting down). Try again; a refused
      // token then comes back as connect_error "unauthorized" and we go to the login form.
      setTimeout(() => { if (state.rt === rt && !s.connected) s.connect(); }, 1000);
    }
  });
  s.on('connect_error', (err) => {
    if (state.rt !== rt) return;
    const data = err && err.data;
    if (data && data.code === 'unauthorized') {
      logout('login.sessionExpired');
      return;
    }
    setConn('offline');
    if (!s.active) {
      // Refused by the server for another reason (e.g. "unavailable"): retry by hand.
      setTimeout(() => { if (state.rt === rt && !s.connected) s.connect(); }, 2000);
    }
  });
  s.on('message', (m) => onMessageEvent(m));
  s.on('message_edited', (m) => onMessageChanged(m));
  s.on('message_deleted', (m) => onMessageChanged(m));
  s.on('read', (ev) => onRead(ev));
  s.on('typing', (ev) => onTyping(ev));
  s.on('presence', (ev) => onPresence(ev));
  s.on('room_added', (room) => onRoomAdded(room));
  s.on('room_removed', (ev) => onRoomRemoved(ev));
  s.on('room_updated', (room) => onRoomUpdated(room));
  // Admins hear of every project's changes, in its room or not (docs/protocol.md: project_updated).
  s.on('project_updated', (project) => {
    if (!isAdmin()) return;
    patchBoardProject(project);
    if (state.view === 'board') renderBoard();
  });
  s.on('expert_session', (ev) => onExpertSession(ev));
  s.on('queue_position', (ev) => onQueuePosition(ev));
  s.on('expert_queue', (ev) => onExpertQueue(ev));
  s.on('ticket_updated', (ticket) => onTicketUpdated(ticket));
}

let connState = 'connecting';
function setConn(st) {
  connState = st;
  const el = $('conn-status');
  el.dataset.state = st;
  const key = { connecting: 'conn.connecting', online: 'conn.online', offline: 'conn.offline', syncing: 'conn.syncing' }[st];
  const text = $('conn-text');
  text.dataset.i18n = key;
  text.textContent = t(key);
  updateComposerState();
}

/** First connect and every reconnect: refresh rooms, then fill every gap (no loss, no duplicates). */
async function onConnected() {
  const rt = state.rt;
  const first = !state.connectedOnce;
  state.connectedOnce = true;
  setConn(first ? 'connecting' : 'syncing');
  try {
    await refreshRooms();
    if (state.rt !== rt) return;
    loadSessions().catch(() => {});
    if (first) {
      const wanted = roomFromHash();
      if (location.hash === '#board' && isStaff()) showBoard();
      else if (location.hash === '#console' && isStaff()) showConsole();
      else if (wanted && state.rooms.has(wanted)) await selectRoom(wanted);
    } else {
      if (state.view === 'board') loadBoard();
      if (state.view === 'console' || state.console.data) loadConsole();
      await Promise.all([...state.rooms.values()].filter((rs) => rs.loaded).map((rs) => catchUp(rs)));
      const rs = openRoom();
      if (rs && state.rt === rt) {
        if (!rs.loaded) await loadNewest(rs);
        else await refreshNewestPage(rs);
        await loadMembers(rs);
        loadTickets(rs).catch(() => {});
        markRead(rs);
      }
    }
  } catch (err) {
    if (handleAuthFailure(err)) return;
    console.warn('sync after connect failed', err);
  }
  if (state.rt === rt && rt.connected) setConn('online');
}

async function refreshRooms() {
  const res = await state.rt.listRooms();
  const seen = new Set();
  for (const room of res.rooms || []) {
    seen.add(room.id);
    const rs = state.rooms.get(room.id);
    if (!rs) {
      state.rooms.set(room.id, newRoomState(room));
      continue;
    }
    // Messages that arrived live after the server computed this list are still unread.
    const extra = [...rs.localUnread].filter((seq) => seq > (room.last_seq ?? 0));
    const keepLast = rs.room.last_message && room.last_message
      && rs.room.last_message.seq > room.last_message.seq ? rs.room.last_message : room.last_message;
    rs.room = { ...room, last_message: keepLast, unread: (room.unread || 0) + extra.length,
      last_seq: Math.max(room.last_seq || 0, rs.room.last_seq || 0) };
    rs.localUnread = new Set(extra);
    rs.removed = false;
  }
  for (const [id, rs] of [...state.rooms]) {
    if (!seen.has(id)) {
      state.rooms.delete(id);
      if (state.openRoomId === id) closeRoomView('chat.roomRemoved');
      rs.removed = true;
    }
  }
  const rs = openRoom();
  if (rs && pageVisible()) rs.room.unread = 0;
  renderRoomList();
  if (rs) renderHeader();
}

/** Fetch everything after the last seq we hold, page by page, while has_more. */
function catchUp(rs) {
  if (rs.catchingUp) { rs.catchUpAgain = true; return rs.catchingUp; }
  const run = (async () => {
    try {
      do {
        rs.catchUpAgain = false;
        let after = maxSeq(rs);
        for (;;) {
          const res = await state.rt.getHistory(rs.room.id, { afterSeq: after, limit: CATCH_UP_PAGE });
          const list = res.messages || [];
          for (const m of list) upsertMessage(rs, m, { live: false });
          if (list.length) after = Math.max(after, list[list.length - 1].seq);
          if (!res.has_more || !list.length) break;
        }
      } while (rs.catchUpAgain);
    } finally {
      rs.catchingUp = null;
    }
  })();
  rs.catchingUp = run;
  return run;
}

/** The newest page again: picks up edits and deletions made while we were offline. */
async function refreshNewestPage(rs) {
  const res = await state.rt.getHistory(rs.room.id, { limit: PAGE_SIZE });
  const list = res.messages || [];
  const lowest = minSeq(rs);
  for (const m of list) {
    if (lowest === null || m.seq >= lowest) upsertMessage(rs, m, { live: false });
  }
}

// ---------------------------------------------------------------------------------------------
// Rooms
// ---------------------------------------------------------------------------------------------

function roomFromHash() {
  const m = /^#room=([^&]+)(?:&msg=.+)?$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

/** `#room=<id>&msg=<id>` (a ticket's link to its message): the message's id. */
function messageFromHash() {
  const m = /^#room=[^&]+&msg=(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

function sortedRooms() {
  const list = [...state.rooms.values()].map((rs) => rs.room);
  const ts = (r) => (r.last_message && r.last_message.created_at) || '';
  list.sort((a, b) => {
    const ta = ts(a); const tb = ts(b);
    if (ta !== tb) return ta < tb ? 1 : -1;
    return String(a.title).localeCompare(String(b.title), 'zh-CN');
  });
  return list;
}

function renderRoomList() {
  const ul = $('room-list');
  const filter = state.filter.trim().toLowerCase();
  const frag = document.createDocumentFragment();
  let total = 0;
  for (const room of sortedRooms()) {
    total += 1;
    if (filter) {
      const hay = [room.title, room.project && room.project.name, room.project && room.project.client_org,
        room.project && room.project.external_id].filter(Boolean).join(' ').toLowerCase();
      if (!hay.includes(filter)) continue;
    }
    const sess = room.kind === 'expert' ? state.sessions.get(room.id) : null;
    frag.appendChild(roomItem(room, {
      active: room.id === state.openRoomId, me: state.me, onOpen: selectRoom, kindBadge: sess ? sessionBadge(sess.status) : null,
    }));
  }
  clear(ul);
  ul.appendChild(frag);
  $('room-empty').hidden = total > 0;
  updateTitle();
  updateConsoleCount();
  if (state.view === 'board') renderBoard();
  else if (state.view === 'console') renderConsole();
}

function updateTitle() {
  let unread = 0;
  for (const rs of state.rooms.values()) unread += Math.max(0, rs.room.unread || 0);
  document.title = unread ? `(${unread}) ${t('app.name')}` : t('app.name');
}

async function selectRoom(roomId) {
  const rs = roomState(roomId);
  if (!rs) return;
  if (state.openRoomId === roomId && rs.loaded) { markRead(rs); return; }
  const prev = openRoom();
  if (prev && prev !== rs) {
    prev.draft = $('message-input').value;
    stopTypingNow(true);
  }
  state.openRoomId = roomId;
  state.ratingPick = 0;
  $('rating-comment').value = '';
  $('rating-error').textContent = '';
  setView('chat');
  if (roomFromHash() !== roomId) history.replaceState(null, '', `#room=${encodeURIComponent(roomId)}`);
  if (rs.room.kind === 'expert') {
    ensureSession(roomId, true).then(() => { if (state.openRoomId === roomId) renderHeader(); }).catch(() => {});
  }
  $('chat-placeholder').hidden = true;
  $('chat-room').hidden = false;
  $('message-input').value = rs.draft || '';
  $('composer-error').textContent = '';
  $('ticket-error').textContent = '';
  $('internal-checkbox').checked = false;
  renderRoomList();
  renderHeader();
  renderMessages({ toBottom: true });
  renderMembers();
  renderTickets();
  renderTyping();
  renderReplyBar();
  if (!rs.loaded) {
    try {
      await loadNewest(rs);
    } catch (err) {
      if (handleAuthFailure(err)) return;
      renderHistoryStatus(rs);
    }
  }
  if (state.openRoomId !== roomId) return;
  markRead(rs);
  loadMembers(rs).catch((err) => { if (!handleAuthFailure(err)) console.warn(err); });
  loadTickets(rs).catch((err) => { if (!handleAuthFailure(err)) console.warn(err); });
  const wantedMessage = messageFromHash();
  if (wantedMessage) jumpToMessage(wantedMessage);
  if (window.matchMedia('(pointer: fine)').matches) $('message-input').focus();
}

function closeRoomView(noticeKey) {
  stopTypingNow(false);
  state.openRoomId = null;
  setView('chat');
  $('chat-room').hidden = true;
  $('chat-placeholder').hidden = false;
  const n = $('chat-notice');
  if (noticeKey) {
    n.dataset.i18n = noticeKey;
    n.textContent = t(noticeKey);
    n.hidden = false;
  } else {
    n.hidden = true;
  }
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  renderRoomList();
}

async function loadNewest(rs) {
  if (rs.loading) return;
  rs.loading = true;
  renderHistoryStatus(rs);
  try {
    const res = await state.rt.getHistory(rs.room.id, { limit: PAGE_SIZE });
    for (const m of res.messages || []) upsertMessage(rs, m, { live: false, render: false });
    rs.hasOlder = !!res.has_more;
    rs.loaded = true;
  } finally {
    rs.loading = false;
  }
  if (state.openRoomId === rs.room.id) {
    renderMessages({ toBottom: true });
    fillViewport(rs);
  }
  // Messages that came in live during the first fetch are all in; close any remaining gap.
  await catchUp(rs);
}

/** If the first page does not fill the view, there is no scrollbar to pull: load more now. */
function fillViewport(rs) {
  const box = $('messages');
  if (rs.hasOlder && box.scrollHeight <= box.clientHeight + NEAR_TOP_PX) loadOlder(rs);
}

async function loadOlder(rs) {
  if (!rs.loaded || !rs.hasOlder || rs.loadingOlder) return;
  const before = minSeq(rs);
  if (before === null) return;
  rs.loadingOlder = true;
  rs.olderError = false;
  renderHistoryStatus(rs);
  try {
    const res = await state.rt.getHistory(rs.room.id, { beforeSeq: before, limit: PAGE_SIZE });
    rs.hasOlder = !!res.has_more;
    if (state.openRoomId === rs.room.id) {
      const box = $('messages');
      const prevHeight = box.scrollHeight;
      const prevTop = box.scrollTop;
      for (const m of res.messages || []) upsertMessage(rs, m, { live: false, keepScroll: true });
      // Keep what the user was looking at in place.
      box.scrollTop = prevTop + (box.scrollHeight - prevHeight);
    } else {
      for (const m of res.messages || []) upsertMessage(rs, m, { live: false, render: false });
    }
  } catch (err) {
    if (handleAuthFailure(err)) return;
    rs.olderError = true;
  } finally {
    rs.loadingOlder = false;
    if (state.openRoomId === rs.room.id) renderHistoryStatus(rs);
  }
  if (state.openRoomId === rs.room.id) fillViewport(rs);
}

async function loadMembers(rs) {
  const res = await state.rt.getMembers(rs.room.id);
  const map = new Map();
  for (const m of res.members || []) {
    if (!m || !m.user) continue;
    map.set(m.user.id, m);
    // Forward compatible: take a read marker from the member record if the server sends one.
    if (typeof m.last_read_seq === 'number') {
      rs.reads.set(m.user.id, Math.max(rs.reads.get(m.user.id) || 0, m.last_read_seq));
    }
  }
  rs.members = map;
  if (state.openRoomId === rs.room.id) {
    renderMembers();
    refreshReceipts(rs);
    if (rs.room.kind === 'expert') renderExpertUi();
  }
}

// ---------------------------------------------------------------------------------------------
// Messages: state updates
// ---------------------------------------------------------------------------------------------

/** Is `incoming` at least as new as `existing` (same message)? Stale pages must not undo edits. */
function isNewerOrSame(existing, incoming) {
  if (existing.deleted && !incoming.deleted) return false;
  if (existing.edited_at && !incoming.edited_at && !incoming.deleted) return false;
  if (existing.edited_at && incoming.edited_at && incoming.edited_at < existing.edited_at) return false;
  return true;
}

/**
 * Put a message into a room's store (dedupe by seq and id, order by seq) and update the view.
 * opts.live: it came as a live event (counts as unread); opts.render: update the DOM if open.
 */
function upsertMessage(rs, msg, opts = {}) {
  const { render = true, keepScroll = false } = opts;
  if (!msg || typeof msg.seq !== 'number') return false;
  const existing = rs.msgs.get(msg.seq);
  let changed = true;
  if (existing) {
    if (existing.id === msg.id && !isNewerOrSame(existing, msg)) changed = false;
    else if (existing.id === msg.id && JSON.stringify(existing) === JSON.stringify(msg)) changed = false;
  }
  const keep = rs.loaded || rs.loading;
  if (keep && changed) {
    rs.msgs.set(msg.seq, msg);
    rs.idToSeq.set(msg.id, msg.seq);
  }
  // My own send, confirmed by the ack, the live event or a catch-up: the pending copy goes.
  let pendingGone = false;
  if (msg.client_msg_id && isMine(msg) && rs.pending.has(msg.client_msg_id)) {
    rs.pending.delete(msg.client_msg_id);
    pendingGone = true;
  }
  // Room summary.
  const room = rs.room;
  if (!room.last_message || msg.seq >= (room.last_message.seq || 0)) {
    if (!room.last_message || room.last_message.id !== msg.id || changed) room.last_message = msg;
  }
  if (msg.seq > (room.last_seq || 0)) room.last_seq = msg.seq;

  if (render && state.openRoomId === rs.room.id) {
    if (keep && changed) renderOneMessage(rs, msg, { keepScroll, own: isMine(msg) });
    if (pendingGone) renderPending(rs);
  }
  return changed;
}

function onMessageEvent(msg) {
  if (!msg || !msg.room_id) return;
  const rs = roomState(msg.room_id);
  if (!rs) {
    // A room we do not know yet (added while we were busy): refresh the list.
    if (state.rt) refreshRooms().catch(() => {});
    return;
  }
  const known = rs.msgs.has(msg.seq);
  const isNew = !known && msg.seq > (rs.room.last_seq || 0);
  const prevMax = maxSeq(rs);
  const open = state.openRoomId === rs.room.id;
  // The sender's typing indicator ends with their message.
  if (msg.sender && rs.typing.delete(msg.sender.id) && open) renderTyping();

  upsertMessage(rs, msg, { live: true });

  if (isNew && !isMine(msg) && !msg.deleted) {
    if (open && pageVisible()) {
      markRead(rs);
    } else {
      rs.room.unread = (rs.room.unread || 0) + 1;
      rs.localUnread.add(msg.seq);
    }
  }
  renderRoomList();
  // A jump in seq means we missed something (or the server hides internal notes from us): fill it.
  if (rs.loaded && !rs.catchingUp && prevMax && msg.seq > prevMax + 1) {
    catchUp(rs).catch(() => {});
  }
}

function onMessageChanged(msg) {
  if (!msg || !msg.room_id) return;
  const rs = roomState(msg.room_id);
  if (!rs) return;
  if (msg.deleted && !isMine(msg) && state.openRoomId !== rs.room.id
      && rs.localUnread.has(msg.seq) && rs.room.unread > 0) {
    rs.room.unread -= 1;
    rs.localUnread.delete(msg.seq);
  }
  upsertMessage(rs, msg, { live: true });
  if (rs.room.last_message && rs.room.last_message.id === msg.id) rs.room.last_message = msg;
  renderRoomList();
  // Messages quoting this one show its new text.
  if (state.openRoomId === rs.room.id) {
    for (const m of rs.msgs.values()) {
      if (m.reply_to === msg.id) renderOneMessage(rs, m, { keepScroll: true });
    }
    renderReplyBar();
  }
}

function onRead(ev) {
  if (!ev || !ev.room_id) return;
  const rs = roomState(ev.room_id);
  if (!rs) return;
  if (state.me && ev.user_id === state.me.id) {
    // Read on another device or tab.
    rs.room.last_read_seq = Math.max(rs.room.last_read_seq || 0, ev.seq);
    if (ev.seq >= (rs.room.last_seq || 0)) { rs.room.unread = 0; rs.localUnread.clear(); }
    for (const s of [...rs.localUnread]) if (s <= ev.seq) rs.localUnread.delete(s);
    renderRoomList();
    return;
  }
  const prev = rs.reads.get(ev.user_id) || 0;
  if (ev.seq > prev) {
    rs.reads.set(ev.user_id, ev.seq);
    if (state.openRoomId === rs.room.id) refreshReceipts(rs);
  }
}

function onTyping(ev) {
  if (!ev || !ev.room_id || !ev.user) return;
  if (state.me && ev.user.id === state.me.id) return;
  const rs = roomState(ev.room_id);
  if (!rs) return;
  if (ev.typing) rs.typing.set(ev.user.id, { name: ev.user.name, until: Date.now() + TYPING_EXPIRE_MS });
  else rs.typing.delete(ev.user.id);
  if (state.openRoomId === rs.room.id) renderTyping();
}

function onPresence(ev) {
  if (!ev || !ev.user_id) return;
  for (const rs of state.rooms.values()) {
    const m = rs.members && rs.members.get(ev.user_id);
    if (m) m.online = !!ev.online;
  }
  const rs = openRoom();
  if (rs && rs.members && rs.members.has(ev.user_id)) renderMembers();
}

function onRoomAdded(room) {
  if (!room || !room.id) return;
  const rs = state.rooms.get(room.id);
  if (rs) { rs.room = { ...rs.room, ...room }; rs.removed = false; } else state.rooms.set(room.id, newRoomState(room));
  renderRoomList();
  if (room.kind === 'expert') {
    ensureSession(room.id, true).then(() => renderRoomList()).catch(() => {});
    scheduleConsoleReload();
  }
  if (room.project) scheduleBoardReload();
}

function onRoomRemoved(ev) {
  if (!ev || !ev.room_id) return;
  const rs = state.rooms.get(ev.room_id);
  if (!rs) return;
  rs.removed = true;
  state.rooms.delete(ev.room_id);
  const transferred = state.justTransferred === ev.room_id;
  if (transferred) state.justTransferred = null;
  if (rs.room.kind === 'expert') {
    state.sessions.delete(ev.room_id);
    scheduleConsoleReload();
  }
  if (rs.room.project) scheduleBoardReload();
  if (state.openRoomId === ev.room_id) closeRoomView(transferred ? 'expert.transferred' : 'chat.roomRemoved');
  else renderRoomList();
}

const PER_USER_FIELDS = ['my_role', 'unread', 'last_read_seq', 'last_message'];

function onRoomUpdated(room) {
  if (!room || !room.id) return;
  const rs = state.rooms.get(room.id);
  if (!rs) { if (state.rt) refreshRooms().catch(() => {}); return; }
  const next = { ...rs.room };
  for (const [k, v] of Object.entries(room)) {
    if (PER_USER_FIELDS.includes(k)) continue;
    if (k === 'last_seq') next.last_seq = Math.max(next.last_seq || 0, v || 0);
    else next[k] = v;
  }
  rs.room = next;
  if (room.project) patchBoardProject(room.project);
  renderRoomList();
  if (state.openRoomId === room.id) {
    renderHeader();
    renderMessages({ keepPosition: true });  // read-only rooms lose their edit buttons
    loadMembers(rs).catch(() => {});          // a stage change brings in new people
    renderTickets();                          // a closed room's tickets can no longer be moved here
  }
}

// ---------------------------------------------------------------------------------------------
// Read markers
// ---------------------------------------------------------------------------------------------

async function markRead(rs) {
  if (!rs || !state.rt || !rs.loaded || state.openRoomId !== rs.room.id || !pageVisible()) return;
  const target = Math.max(maxSeq(rs), 0);
  const already = rs.room.last_read_seq || 0;
  const hadUnread = (rs.room.unread || 0) > 0;
  rs.room.unread = 0;
  rs.localUnread.clear();
  if (hadUnread) renderRoomList();
  if (target <= already) return;
  if (rs.marking) { rs.markAgain = true; return; }
  rs.marking = true;
  try {
    const res = await state.rt.markRead(rs.room.id, target);
    rs.room.last_read_seq = Math.max(rs.room.last_read_seq || 0, res.last_read_seq ?? target);
  } catch (err) {
    handleAuthFailure(err);
  } finally {
    rs.marking = false;
  }
  if (rs.markAgain) { rs.markAgain = false; markRead(rs); }
}

/** Names of the other people who have read up to (at least) this message. */
function readersOf(rs, msg) {
  const names = [];
  for (const [uid, seq] of rs.reads) {
    if (seq < msg.seq || (state.me && uid === state.me.id) || uid === (msg.sender && msg.sender.id)) continue;
    const m = rs.members && rs.members.get(uid);
    names.push(m ? m.user.name : uid);
  }
  return names;
}

function othersCount(rs) {
  if (!rs.members) return 0;
  let n = 0;
  for (const [uid, m] of rs.members) if (!state.me || uid !== state.me.id) if (!m.user || m.user.kind !== 'bot') n += 1;
  return n;
}

function refreshReceipts(rs) {
  const ctx = messageCtx(rs);
  for (const li of $('message-items').children) {
    const seq = Number(li.dataset.seq);
    const msg = rs.msgs.get(seq);
    if (msg && isMine(msg)) updateReceipt(li, msg, ctx);
  }
}

// ---------------------------------------------------------------------------------------------
// Messages: rendering
// ---------------------------------------------------------------------------------------------

function messageCtx(rs) {
  return {
    me: state.me,
    canModerate: isAdmin(),
    readOnly: !!rs.room.read_only,
    othersCount: othersCount(rs),
    replyTarget: (id) => { const s = rs.idToSeq.get(id); return s === undefined ? null : rs.msgs.get(s) || null; },
    readers: (msg) => readersOf(rs, msg),
    onEdit: (msg) => beginEdit(rs, msg),
    onDelete: (msg) => confirmDelete(rs, msg),
    onReply: (msg) => { rs.replyTo = msg.id; renderReplyBar(); $('message-input').focus(); },
  };
}

function atBottom() {
  const box = $('messages');
  return box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
}

function scrollToBottom() {
  const box = $('messages');
  box.scrollTop = box.scrollHeight;
  $('new-messages').hidden = true;
}

/** Sorted list of rendered seqs, kept in step with #message-items. */
let renderedSeqs = [];

function renderMessages({ toBottom = false, keepPosition = false } = {}) {
  const rs = openRoom();
  const list = $('message-items');
  const box = $('messages');
  const fromBottom = box.scrollHeight - box.scrollTop;
  clear(list);
  renderedSeqs = [];
  if (!rs) return;
  const ctx = messageCtx(rs);
  const seqs = [...rs.msgs.keys()].sort((a, b) => a - b);
  const frag = document.createDocumentFragment();
  for (const seq of seqs) frag.appendChild(messageItem(rs.msgs.get(seq), ctx));
  list.appendChild(frag);
  renderedSeqs = seqs;
  renderPending(rs);
  renderHistoryStatus(rs);
  updateComposerState();
  if (toBottom) scrollToBottom();
  else if (keepPosition) box.scrollTop = box.scrollHeight - fromBottom;
}

function renderOneMessage(rs, msg, { keepScroll = false, own = false } = {}) {
  const list = $('message-items');
  const wasAtBottom = atBottom();
  const el = messageItem(msg, messageCtx(rs));
  // Binary search for the position by seq.
  let lo = 0; let hi = renderedSeqs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (renderedSeqs[mid] < msg.seq) lo = mid + 1; else hi = mid;
  }
  if (renderedSeqs[lo] === msg.seq) {
    const old = list.children[lo];
    if (old && old.querySelector('.msg-editor')) {
      // Being edited right now: keep the editor, refresh the rest once the edit ends.
      old.dataset.stale = '1';
      return;
    }
    list.replaceChild(el, old);
    return;
  }
  const before = list.children[lo] || null;
  list.insertBefore(el, before);
  renderedSeqs.splice(lo, 0, msg.seq);
  if (keepScroll) return;
  const appended = lo === renderedSeqs.length - 1;
  if (appended && (wasAtBottom || own)) scrollToBottom();
  else if (appended) $('new-messages').hidden = false;
}

function renderPending(rs) {
  const ul = $('pending-items');
  const wasAtBottom = atBottom();
  clear(ul);
  if (!rs) return;
  for (const p of rs.pending.values()) {
    ul.appendChild(pendingItem(p, state.me, {
      onRetry: (x) => doSend(rs, x),
      onDiscard: (x) => { rs.pending.delete(x.clientMsgId); renderPending(rs); },
    }));
  }
  if (wasAtBottom) scrollToBottom();
}

function renderHistoryStatus(rs) {
  const el = $('history-status');
  clear(el);
  if (!rs) return;
  let key = null;
  if (rs.loading || rs.loadingOlder) key = 'chat.loadingOlder';
  else if (rs.olderError) key = 'chat.loadOlderFailed';
  else if (rs.loaded && !rs.hasOlder && rs.msgs.size > 0) key = 'chat.noOlder';
  el.dataset.state = key ? key.split('.')[1] : '';
  $('messages').dataset.roomId = rs.room.id;
  $('messages').dataset.loaded = String(rs.loaded);
  if (key) el.appendChild(h('span', { i18n: key }));
}

function renderHeader() {
  const rs = openRoom();
  if (!rs) return;
  const room = rs.room;
  const title = room.title || (room.project && room.project.name) || room.id;
  $('chat-title').textContent = title;
  $('chat-title').title = title;
  const stageSlot = $('chat-stage');
  clear(stageSlot);
  const sess = room.kind === 'expert' ? state.sessions.get(room.id) : null;
  if (room.project && room.project.stage) stageSlot.appendChild(stageBadge(room.project.stage));
  else if (room.kind === 'expert') {
    stageSlot.appendChild(h('span', { className: 'stage-badge stage-expert', i18n: 'rooms.kind.expert' }));
    if (sess) stageSlot.appendChild(sessionBadge(sess.status));
  }
  const p = room.project;
  let parts = p ? [p.client_org, (p.products || []).map(productLabel).join('、'), p.external_id] : [];
  if (sess) parts = [productLabel(sess.product), isStaff() ? clientLabel(rs, sess) : null];
  $('chat-subtitle').textContent = parts.filter(Boolean).join(' · ');
  updateComposerState();
  renderExpertUi();
}

function renderMembers() {
  const rs = openRoom();
  const ul = $('member-list');
  clear(ul);
  const countEl = $('members-count');
  if (!rs || !rs.members) { countEl.textContent = ''; return; }
  const members = [...rs.members.values()];
  const rank = (m) => (m.user.kind === 'client' ? 1 : m.user.kind === 'bot' ? 2 : 0);
  members.sort((a, b) => (Number(b.online) - Number(a.online)) || (rank(a) - rank(b))
    || String(a.user.name).localeCompare(String(b.user.name), 'zh-CN'));
  for (const m of members) ul.appendChild(memberItem(m, state.me));
  const online = members.filter((m) => m.online).length;
  countEl.textContent = t('members.count', { online, total: members.length });
}

// ---------------------------------------------------------------------------------------------
// Tickets (the room's tickets panel; filed with /ticket, moved by staff here or by the ticket system)
// ---------------------------------------------------------------------------------------------

async function loadTickets(rs) {
  const res = await getTickets(rs.room.id);
  const map = new Map();
  for (const ticket of res.tickets || []) map.set(ticket.number, ticket);
  // Live updates that came in while the list was on its way are at least as new.
  if (rs.tickets) {
    for (const [n, ticket] of rs.tickets) {
      const loaded = map.get(n);
      if (!loaded || loaded.change_seq < ticket.change_seq) map.set(n, ticket);
    }
  }
  rs.tickets = map;
  if (state.openRoomId === rs.room.id) renderTickets();
}

function onTicketUpdated(ticket) {
  if (!ticket || typeof ticket.number !== 'number') return;
  const rs = roomState(ticket.room_id);
  if (!rs) return;
  if (!rs.tickets) rs.tickets = new Map();
  const known = rs.tickets.get(ticket.number);
  if (known && known.change_seq > ticket.change_seq) return;   // an older view than the one shown
  rs.tickets.set(ticket.number, ticket);
  if (state.openRoomId === rs.room.id) renderTickets();
}

async function changeTicketStatus(ticket, status) {
  const rs = roomState(ticket.room_id);
  $('ticket-error').textContent = '';
  try {
    const res = await setTicketStatus(ticket.number, status);
    if (res.ticket) onTicketUpdated(res.ticket);
  } catch (err) {
    if (handleAuthFailure(err)) return;
    $('ticket-error').textContent = t('tickets.changeFailed', { number: ticket.number, message: errorText(err) });
    if (rs && state.openRoomId === rs.room.id) renderTickets();   // the selector goes back to the status it has
  }
}

/** Scroll to a message of the open room and mark it for a moment (a ticket's link to its source). */
function jumpToMessage(messageId) {
  const el = document.querySelector(`#message-items [data-id="${CSS.escape(messageId)}"]`);
  if (!el) return false;
  el.scrollIntoView({ block: 'center' });
  el.classList.add('msg-flash');
  setTimeout(() => el.classList.remove('msg-flash'), 2000);
  return true;
}

function renderTickets() {
  const rs = openRoom();
  const ul = $('ticket-list');
  clear(ul);
  const tickets = rs && rs.tickets ? [...rs.tickets.values()].sort((a, b) => a.number - b.number) : [];
  $('tickets-empty').hidden = !(rs && rs.tickets) || tickets.length > 0;
  $('tickets-count').textContent = tickets.length ? String(tickets.length) : '';
  const canChange = isStaff() && !(rs && rs.room.read_only);
  for (const ticket of tickets) {
    ul.appendChild(ticketItem(ticket, {
      canChange,
      onStatus: (tk, status) => changeTicketStatus(tk, status),
      onJump: (tk) => jumpToMessage(tk.source_message_id),
    }));
  }
}

function renderTyping() {
  const el = $('typing-indicator');
  const rs = openRoom();
  const now = Date.now();
  const names = [];
  if (rs) {
    for (const [uid, v] of [...rs.typing]) {
      if (v.until <= now) rs.typing.delete(uid); else names.push(v.name);
    }
  }
  let text = '';
  if (names.length === 1) text = t('chat.typing.one', { name: names[0] });
  else if (names.length === 2) text = t('chat.typing.two', { a: names[0], b: names[1] });
  else if (names.length > 2) text = t('chat.typing.many', { count: names.length });
  el.textContent = text;
  el.classList.toggle('active', !!text);
}

function renderMe() {
  const me = state.me;
  $('me-name').textContent = me.name || me.username || '';
  $('me-org').textContent = me.org || '';
  const slot = $('me-avatar');
  clear(slot);
  slot.appendChild(avatar(me.id, me.name, 'me-avatar'));
}

function renderReplyBar() {
  const rs = openRoom();
  const bar = $('reply-bar');
  const text = $('reply-bar-text');
  if (!rs || !rs.replyTo) { bar.hidden = true; text.textContent = ''; return; }
  const seq = rs.idToSeq.get(rs.replyTo);
  const target = seq === undefined ? null : rs.msgs.get(seq);
  if (!target || target.deleted) { rs.replyTo = null; bar.hidden = true; return; }
  text.textContent = `${t('chat.replyTo', { name: target.sender.name })}${snippet(target.text, 60)}`;
  bar.hidden = false;
}

function updateComposerState() {
  const rs = openRoom();
  const readOnly = !!(rs && rs.room.read_only);
  const banner = $('readonly-banner');
  // An expert room's own banner (top) already says the session has ended.
  banner.hidden = !readOnly || rs.room.kind === 'expert';
  if (readOnly) {
    banner.dataset.i18n = 'chat.readOnly';
    banner.textContent = t('chat.readOnly');
  }
  const input = $('message-input');
  input.disabled = readOnly;
  input.placeholder = t(readOnly ? 'chat.readOnlyInput' : 'composer.placeholder');
  $('send-button').disabled = readOnly;
  $('composer').classList.toggle('read-only', readOnly);
  $('composer').dataset.readOnly = String(readOnly);
  $('internal-toggle').hidden = !isStaff() || readOnly;
}

// ---------------------------------------------------------------------------------------------
// Sending, editing, deleting
// ---------------------------------------------------------------------------------------------

function onComposerSubmit(ev) {
  ev.preventDefault();
  const rs = openRoom();
  if (!rs || rs.room.read_only) return;
  const input = $('message-input');
  const text = input.value;
  if (!text.trim()) {
    $('composer-error').textContent = t('error.empty_text');
    return;
  }
  $('composer-error').textContent = '';
  const p = {
    clientMsgId: newClientMsgId(),
    roomId: rs.room.id,
    text,
    replyTo: rs.replyTo || null,
    internal: state.me.kind === 'staff' && $('internal-checkbox').checked,
    status: 'sending',
    error: '',
  };
  rs.pending.set(p.clientMsgId, p);
  input.value = '';
  rs.draft = '';
  rs.replyTo = null;
  $('internal-checkbox').checked = false;
  renderReplyBar();
  stopTypingNow(true);
  doSend(rs, p);
  scrollToBottom();
  input.focus();
}

async function doSend(rs, p) {
  p.status = 'sending';
  p.error = '';
  if (tooBigForWire(p.text)) {
    p.status = 'failed';
    p.error = t('error.text_too_long');
    if (state.openRoomId === rs.room.id) renderPending(rs);
    return;
  }
  if (state.openRoomId === rs.room.id) renderPending(rs);
  try {
    // The same client_msg_id on every attempt: a retry never creates a second message.
    const res = await state.rt.sendMessage({
      roomId: p.roomId, text: p.text, clientMsgId: p.clientMsgId, replyTo: p.replyTo, internal: p.internal,
    });
    if (res.message) {
      upsertMessage(rs, res.message, { live: false });
      if (state.openRoomId === rs.room.id) scrollToBottom();
      renderRoomList();
    }
  } catch (err) {
    if (handleAuthFailure(err)) return;
    if (!rs.pending.has(p.clientMsgId)) return;   // it arrived meanwhile
    p.status = 'failed';
    p.error = errorText(err);
    if (state.openRoomId === rs.room.id) renderPending(rs);
  }
}

function beginEdit(rs, msg) {
  const li = $('message-items').querySelector(`li[data-seq="${CSS.escape(String(msg.seq))}"]`);
  if (!li || li.querySelector('.msg-editor')) return;
  const textEl = li.querySelector('.msg-text');
  const ta = h('textarea', { className: 'msg-editor-input', testid: 'edit-input', attrs: { rows: '2' } });
  ta.value = msg.text;
  const err = h('span', { className: 'msg-editor-error', testid: 'edit-error', attrs: { role: 'alert' } });
  const finish = () => {
    editor.remove();
    textEl.hidden = false;
    li.classList.remove('editing');
    if (li.dataset.stale) {
      const cur = rs.msgs.get(msg.seq);
      if (cur) renderOneMessage(rs, cur, { keepScroll: true });
    }
  };
  const save = async () => {
    const text = ta.value;
    if (!text.trim()) { err.textContent = t('error.empty_text'); return; }
    if (text === msg.text) { finish(); return; }
    if (tooBigForWire(text)) { err.textContent = t('error.text_too_long'); return; }
    saveBtn.disabled = true;
    try {
      const res = await state.rt.editMessage(msg.id, text);
      finish();
      if (res.message) upsertMessage(rs, res.message, { live: false, keepScroll: true });
      renderRoomList();
    } catch (e) {
      if (handleAuthFailure(e)) return;
      saveBtn.disabled = false;
      err.textContent = errorText(e);
    }
  };
  const saveBtn = h('button', { className: 'btn btn-primary btn-sm', testid: 'edit-save', i18n: 'chat.save',
    attrs: { type: 'button' }, on: { click: save } });
  const editor = h('div', { className: 'msg-editor' }, ta,
    h('div', { className: 'msg-editor-bar' }, err,
      h('button', { className: 'btn btn-ghost btn-sm', testid: 'edit-cancel', i18n: 'chat.cancel',
        attrs: { type: 'button' }, on: { click: finish } }),
      saveBtn));
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) { e.preventDefault(); save(); }
    if (e.key === 'Escape') { e.preventDefault(); finish(); }
  });
  textEl.hidden = true;
  textEl.after(editor);
  li.classList.add('editing');
  ta.focus();
  ta.setSelectionRange(ta.value.length, ta.value.length);
}

function confirmDelete(rs, msg) {
  const li = $('message-items').querySelector(`li[data-seq="${CSS.escape(String(msg.seq))}"]`);
  if (!li || li.querySelector('.msg-confirm')) return;
  const err = h('span', { className: 'msg-editor-error', attrs: { role: 'alert' } });
  const bar = h('div', { className: 'msg-confirm', testid: 'delete-confirm' },
    h('span', { i18n: 'chat.confirmDelete' }),
    err,
    h('button', { className: 'btn btn-ghost btn-sm', testid: 'delete-cancel', i18n: 'chat.cancel',
      attrs: { type: 'button' }, on: { click: () => bar.remove() } }),
    h('button', {
      className: 'btn btn-danger btn-sm', testid: 'delete-confirm-button', i18n: 'chat.confirm', attrs: { type: 'button' },
      on: {
        click: async (e) => {
          e.currentTarget.disabled = true;
          try {
            const res = await state.rt.deleteMessage(msg.id);
            bar.remove();
            if (res.message) upsertMessage(rs, res.message, { live: false, keepScroll: true });
            renderRoomList();
          } catch (ex) {
            if (handleAuthFailure(ex)) return;
            err.textContent = errorText(ex);
            e.currentTarget.disabled = false;
          }
        },
      },
    }));
  li.querySelector('.msg-body').appendChild(bar);
}

// ---------------------------------------------------------------------------------------------
// Typing (outgoing)
// ---------------------------------------------------------------------------------------------

const typingOut = { roomId: null, lastSent: 0, idleTimer: null };

function onComposerInput() {
  const rs = openRoom();
  if (!rs || !state.rt || !state.rt.connected || rs.room.read_only) return;
  $('composer-error').textContent = '';
  const input = $('message-input');
  if (!input.value.trim()) { stopTypingNow(true); return; }
  const now = Date.now();
  if (typingOut.roomId !== rs.room.id || now - typingOut.lastSent > TYPING_SEND_INTERVAL_MS) {
    typingOut.roomId = rs.room.id;
    typingOut.lastSent = now;
    state.rt.setTyping(rs.room.id, true).catch(() => {});
  }
  clearTimeout(typingOut.idleTimer);
  typingOut.idleTimer = setTimeout(() => stopTypingNow(true), TYPING_IDLE_MS);
}

function stopTypingNow(notify) {
  clearTimeout(typingOut.idleTimer);
  typingOut.idleTimer = null;
  if (typingOut.roomId && notify && state.rt && state.rt.connected) {
    state.rt.setTyping(typingOut.roomId, false).catch(() => {});
  }
  typingOut.roomId = null;
  typingOut.lastSent = 0;
}

// ---------------------------------------------------------------------------------------------
// Delivery desk: navigation, project board, expert console, expert sessions
// ---------------------------------------------------------------------------------------------

function resetDesk() {
  clearTimeout(state.board.timer);
  clearTimeout(state.console.timer);
  state.view = 'chat';
  state.sessions = new Map();
  state.board = { projects: null, loading: false, error: '', gen: state.board.gen + 1, timer: null };
  state.console = { data: null, loading: false, error: '', gen: state.console.gen + 1, timer: null };
  state.justTransferred = null;
  state.ratingPick = 0;
  for (const id of ['ask-dialog', 'transfer-dialog', 'close-dialog']) if ($(id).open) $(id).close();
  $('board-view').hidden = true;
  $('console-view').hidden = true;
  clear($('board'));
  clear($('console-sessions'));
  clear($('console-queues'));
  $('sidebar-nav').hidden = true;
  $('expert-banner').hidden = true;
  $('rating-form').hidden = true;
  $('rating-thanks').hidden = true;
  $('expert-actions').hidden = true;
}

function renderNav() {
  const staff = isStaff();
  $('sidebar-nav').hidden = false;
  $('ask-expert-button').hidden = !state.me || state.me.kind !== 'client';
  $('nav-board').hidden = !staff;
  $('nav-console').hidden = !staff;
  for (const id of ['nav-board', 'nav-console']) {
    const b = $(id);
    const on = b.dataset.view === state.view;
    b.classList.toggle('active', on);
    if (on) b.setAttribute('aria-current', 'page'); else b.removeAttribute('aria-current');
  }
  updateConsoleCount();
}

function updateConsoleCount() {
  const el = $('nav-console-count');
  if (!state.me) { el.hidden = true; return; }
  let n = 0;
  for (const s of state.sessions.values()) if (s.status === 'active' && s.expert_id === state.me.id) n += 1;
  el.textContent = String(n);
  el.hidden = n === 0;
  el.title = t('console.capacity', { count: n, max: state.me.max_sessions ?? '–' });
}

/** Show one of the main views. The chat view shows the open room, or the placeholder. */
function setView(view) {
  state.view = view;
  $('board-view').hidden = view !== 'board';
  $('console-view').hidden = view !== 'console';
  if (view !== 'chat') {
    $('chat-room').hidden = true;
    $('chat-placeholder').hidden = true;
  } else if (!state.openRoomId) {
    $('chat-room').hidden = true;
    $('chat-placeholder').hidden = false;
  }
  if (state.me) renderNav();
}

/** Leave the open room without a notice (switching to the board or console). */
function leaveOpenRoom() {
  const rs = openRoom();
  if (rs) rs.draft = $('message-input').value;
  stopTypingNow(true);
  state.openRoomId = null;
  $('chat-notice').hidden = true;
}

async function openRoomById(roomId) {
  if (!state.rooms.has(roomId) && state.rt) {
    try { await refreshRooms(); } catch (err) { if (handleAuthFailure(err)) return; }
  }
  if (state.rooms.has(roomId)) await selectRoom(roomId);
}

// ---- board ----

function showBoard() {
  if (!isStaff()) return;
  leaveOpenRoom();
  setView('board');
  if (location.hash !== '#board') history.replaceState(null, '', '#board');
  renderRoomList();
  loadBoard();
}

async function loadBoard() {
  if (!state.rt || !isStaff()) return;
  const b = state.board;
  const gen = ++b.gen;
  b.loading = true;
  if (state.view === 'board') renderBoard();
  try {
    const res = await state.rt.listProjects();
    if (gen !== state.board.gen) return;
    b.projects = res.projects || [];
    b.error = '';
  } catch (err) {
    if (handleAuthFailure(err)) return;
    if (gen === state.board.gen) b.error = errorText(err);
  } finally {
    if (gen === state.board.gen) {
      b.loading = false;
      if (state.view === 'board') renderBoard();
    }
  }
}

function scheduleBoardReload() {
  if (!isStaff() || state.view !== 'board') return;
  clearTimeout(state.board.timer);
  state.board.timer = setTimeout(loadBoard, DESK_RELOAD_DEBOUNCE_MS);
}

/** A room_updated of a project room: move its card at once (a reload is scheduled for anything unknown). */
function patchBoardProject(project) {
  const list = state.board.projects;
  if (!list || !project || !project.id) return;
  const i = list.findIndex((p) => p.id === project.id);
  if (i >= 0) list[i] = { ...list[i], ...project };
  else scheduleBoardReload();
}

function renderBoard() {
  const b = state.board;
  $('board-subtitle').textContent = t(isAdmin() ? 'board.subtitleAdmin' : 'board.subtitle');
  $('board-status').textContent = b.error || (b.loading && !b.projects ? t('board.loading') : '');
  const board = $('board');
  board.dataset.loaded = String(!!b.projects);
  clear(board);
  if (!b.projects) return;
  const roomFor = (p) => { const rs = p.room_id && state.rooms.get(p.room_id); return rs ? rs.room : null; };
  for (const col of boardColumns(b.projects, { admin: isAdmin(), roomFor, onOpen: (id) => openRoomById(id) })) {
    board.appendChild(col);
  }
}

// ---- expert console ----

function showConsole() {
  if (!isStaff()) return;
  leaveOpenRoom();
  setView('console');
  if (location.hash !== '#console') history.replaceState(null, '', '#console');
  renderRoomList();
  loadConsole();
}

async function loadConsole() {
  if (!state.rt || !isStaff()) return;
  const c = state.console;
  const gen = ++c.gen;
  c.loading = true;
  if (state.view === 'console') renderConsole();
  try {
    const res = await state.rt.getExpertConsole();
    if (gen !== state.console.gen) return;
    c.data = { sessions: res.sessions || [], queue: res.queue || {}, experts: res.experts || [],
      products: res.products || [...EXPERT_PRODUCTS] };
    c.error = '';
    for (const s of c.data.sessions) if (!state.sessions.has(s.room_id)) state.sessions.set(s.room_id, s);
  } catch (err) {
    if (handleAuthFailure(err)) return;
    if (gen === state.console.gen) c.error = errorText(err);
  } finally {
    if (gen === state.console.gen) {
      c.loading = false;
      if (state.view === 'console') renderConsole();
      const rs = openRoom();
      if (rs && rs.room.kind === 'expert') renderHeader();
    }
  }
}

/** The console's data is kept fresh while it is shown or has been loaded (the transfer form uses it). */
function scheduleConsoleReload() {
  if (!isStaff() || (state.view !== 'console' && !state.console.data)) return;
  clearTimeout(state.console.timer);
  state.console.timer = setTimeout(loadConsole, DESK_RELOAD_DEBOUNCE_MS);
}

function renderConsole() {
  const c = state.console;
  const me = state.me || {};
  const skills = Array.isArray(me.skills) ? me.skills : [];
  $('console-subtitle').textContent = skills.length && (me.roles || []).includes('solution_expert')
    ? `${t('console.subtitle')} · ${t('console.skills', { skills: skills.map(productLabel).join('、') })}`
    : `${t('console.subtitle')} · ${t('console.noSkills')}`;
  $('console-status').textContent = c.error || (c.loading && !c.data ? t('console.loading') : '');
  const list = $('console-sessions');
  const queues = $('console-queues');
  $('console').dataset.loaded = String(!!c.data);
  clear(list);
  clear(queues);
  if (!c.data) { $('console-capacity').textContent = ''; return; }
  $('console-capacity').textContent = t('console.capacity', { count: c.data.sessions.length, max: me.max_sessions ?? '–' });
  const unreadFor = (roomId) => { const rs = state.rooms.get(roomId); return rs ? Math.max(0, rs.room.unread || 0) : 0; };
  for (const li of consoleSessionItems(c.data.sessions, { onOpen: (id) => openRoomById(id), unreadFor })) list.appendChild(li);
  for (const col of consoleQueueColumns(c.data.products, c.data.queue)) queues.appendChild(col);
}

function onExpertQueue(ev) {
  if (!ev || !ev.product || !Array.isArray(ev.queue)) return;
  const d = state.console.data;
  if (!d) return;
  d.queue = { ...d.queue, [ev.product]: ev.queue };
  if (!d.products.includes(ev.product)) d.products = [...d.products, ev.product];
  if (state.view === 'console') renderConsole();
}

// ---- expert sessions ----

function applySession(s) {
  if (!s || !s.room_id) return null;
  const prev = state.sessions.get(s.room_id) || null;
  state.sessions.set(s.room_id, { ...s });
  return prev;
}

async function ensureSession(roomId, force = false, retries = 0) {
  if (!state.rt) return null;
  if (!force && state.sessions.has(roomId)) return state.sessions.get(roomId);
  const rt = state.rt;
  for (let attempt = 0; ; attempt += 1) {
    try {
      const res = await rt.getExpertSession(roomId);
      if (state.rt !== rt) return null;
      applySession(res.session);
      return res.session;
    } catch (err) {
      if (handleAuthFailure(err)) return null;
      // Many expert rooms at once can hit the per-user event limit: wait and ask again.
      if (!(err instanceof ApiError && err.code === 'rate_limited') || attempt >= retries || state.rt !== rt) return null;
      await new Promise((resolve) => { setTimeout(resolve, 1000 * (attempt + 1)); });
    }
  }
}

/** After (re)connecting: the state of every expert session whose room we are in (closed ones are final). */
async function loadSessions() {
  const ids = [...state.rooms.values()]
    .filter((rs) => rs.room.kind === 'expert')
    .map((rs) => rs.room.id)
    .filter((id) => { const s = state.sessions.get(id); return !s || s.status !== 'closed'; });
  const rt = state.rt;
  const worker = async () => {
    while (ids.length && state.rt === rt) await ensureSession(ids.shift(), true, 3);
  };
  await Promise.all(Array.from({ length: SESSION_FETCH_CONCURRENCY }, worker));
  if (state.rt !== rt) return;
  renderRoomList();
  if (openRoom()) renderHeader();
}

function onExpertSession(s) {
  if (!s || !s.room_id) return;
  const prev = applySession(s);
  const rs = roomState(s.room_id);
  if (!rs && state.rt && s.status !== 'closed') refreshRooms().catch(() => {});
  renderRoomList();
  if (rs && state.openRoomId === s.room_id) {
    renderHeader();
    if (!prev || prev.status !== s.status || prev.expert_id !== s.expert_id) loadMembers(rs).catch(() => {});
  }
  scheduleConsoleReload();
}

function onQueuePosition(ev) {
  if (!ev || !ev.room_id || typeof ev.position !== 'number') return;
  const s = state.sessions.get(ev.room_id);
  if (!s) { ensureSession(ev.room_id, true).then(() => { renderRoomList(); if (state.openRoomId === ev.room_id) renderHeader(); }); return; }
  if (s.status !== 'queued') return;
  s.position = ev.position;
  if (state.openRoomId === ev.room_id) renderExpertUi();
}

/** "周敏（瑞丰物流股份有限公司）": the session's client, from the console or the member list. */
function clientLabel(rs, s) {
  let user = null;
  const fromConsole = state.console.data && state.console.data.sessions.find((x) => x.room_id === s.room_id);
  if (fromConsole && fromConsole.client) user = fromConsole.client;
  else if (rs.members && rs.members.get(s.client_id)) user = rs.members.get(s.client_id).user;
  if (!user) return '';
  return user.org ? `${user.name}（${user.org}）` : user.name;
}

function renderExpertUi() {
  const rs = openRoom();
  const banner = $('expert-banner');
  const actions = $('expert-actions');
  const form = $('rating-form');
  const thanks = $('rating-thanks');
  if (!rs || rs.room.kind !== 'expert') {
    banner.hidden = true; actions.hidden = true; form.hidden = true; thanks.hidden = true;
    return;
  }
  const s = state.sessions.get(rs.room.id);
  const me = state.me;
  let title;
  let sub = '';
  if (!s) {
    title = t('expert.loading');
  } else if (s.status === 'queued') {
    const pos = s.position || 1;
    if (me.id === s.client_id) {
      title = t('expert.queued', { position: pos });
      sub = pos > 1 ? t('expert.queuedAhead', { ahead: pos - 1 }) : t('expert.queuedNext');
    } else {
      title = t('expert.queuedStaff', { position: pos });
      sub = productLabel(s.product);
    }
  } else if (s.status === 'active') {
    const e = s.expert || {};
    const time = s.assigned_at ? shortTime(s.assigned_at) : '';
    if (me.id === s.expert_id) {
      title = t('expert.serving', { client: clientLabel(rs, s) || '…' });
      sub = t('expert.servingSub', { product: productLabel(s.product), time });
    } else {
      title = t('expert.joined', { name: e.name || '' });
      sub = t('expert.joinedSub', { org: e.org || '', time });
    }
  } else {
    title = t('expert.closed');
    sub = s.closed_at ? t('expert.closedSub', { time: shortTime(s.closed_at) }) : '';
  }
  banner.hidden = false;
  banner.dataset.status = s ? s.status : 'loading';
  banner.dataset.position = s && s.status === 'queued' ? String(s.position || '') : '';
  $('expert-banner-title').textContent = title;
  $('expert-banner-sub').textContent = sub;
  $('expert-banner-sub').title = s && s.assigned_at ? fullTime(s.assigned_at) : '';

  actions.hidden = !(s && s.status === 'active' && !rs.room.read_only && (s.expert_id === me.id || isAdmin()));
  const mine = !!(s && s.status === 'closed' && me.id === s.client_id);
  form.hidden = !(mine && (s.rating === null || s.rating === undefined));
  thanks.hidden = !(mine && s.rating !== null && s.rating !== undefined);
  if (!form.hidden) renderStars();
  if (!thanks.hidden) {
    const el = $('rating-thanks-stars');
    el.textContent = starsText(s.rating);
    el.title = t('rating.yours', { n: s.rating });
    el.dataset.rating = String(s.rating);
  }
}

function renderStars() {
  const box = $('rating-stars');
  clear(box);
  for (const b of ratingStars(state.ratingPick, (n) => {
    state.ratingPick = n;
    $('rating-error').textContent = '';
    renderStars();
    const btn = box.querySelector(`[data-value="${n}"]`);
    if (btn) btn.focus();
  })) box.appendChild(b);
  box.dataset.value = String(state.ratingPick);
}

async function onRatingSubmit(ev) {
  ev.preventDefault();
  const rs = openRoom();
  const s = rs && state.sessions.get(rs.room.id);
  if (!s) return;
  if (!state.ratingPick) { $('rating-error').textContent = t('rating.required'); return; }
  const btn = $('rating-submit');
  btn.disabled = true;
  $('rating-error').textContent = '';
  try {
    const res = await state.rt.rateSession(s.room_id, state.ratingPick, $('rating-comment').value.trim());
    applySession(res.session);
    $('rating-comment').value = '';
    state.ratingPick = 0;
    if (state.openRoomId === s.room_id) renderExpertUi();
  } catch (err) {
    if (handleAuthFailure(err)) return;
    $('rating-error').textContent = errorText(err);
    if (err instanceof ApiError && err.code === 'forbidden') {
      // Rated already (another tab) or not closed after all: show the session as it is.
      await ensureSession(s.room_id, true);
      if (state.openRoomId === s.room_id) renderExpertUi();
    }
  } finally {
    btn.disabled = false;
  }
}

// ---- ask an expert (clients) ----

function openAskDialog() {
  const box = $('ask-products');
  const chosen = box.querySelector('input:checked');
  const keep = chosen ? chosen.value : null;
  clear(box);
  for (const product of EXPERT_PRODUCTS) {
    const input = h('input', { attrs: { type: 'radio', name: 'ask-product', value: product } });
    if (product === keep) input.checked = true;
    box.appendChild(h('label', { className: 'choice', testid: 'ask-product', dataset: { product } },
      input, h('span', { className: 'choice-text', text: productLabel(product) })));
  }
  $('ask-error').textContent = '';
  setAskBusy(false);
  $('ask-dialog').showModal();
  (box.querySelector('input:checked') ? $('ask-text') : box.querySelector('input')).focus();
}

function setAskBusy(busy) {
  const b = $('ask-submit');
  b.disabled = busy;
  b.dataset.i18n = busy ? 'ask.submitting' : 'ask.submit';
  b.textContent = t(b.dataset.i18n);
}

async function onAskSubmit(ev) {
  ev.preventDefault();
  const chosen = $('ask-products').querySelector('input:checked');
  const text = $('ask-text').value;
  const err = $('ask-error');
  if (!chosen) { err.textContent = t('ask.chooseProduct'); return; }
  if (!text.trim()) { err.textContent = t('error.empty_text'); return; }
  if (tooBigForWire(text)) { err.textContent = t('error.text_too_long'); return; }
  const product = chosen.value;
  err.textContent = '';
  setAskBusy(true);
  try {
    const known = new Set(state.rooms.keys());
    let roomId = null;
    const open = [...state.sessions.values()].find((s) => s.client_id === state.me.id && s.product === product
      && s.status !== 'closed' && state.rooms.has(s.room_id));
    if (open) {
      roomId = open.room_id;
    } else {
      const res = await state.rt.requestExpert(product, text);
      applySession(res.session);
      roomId = res.session.room_id;
      // The server answers with the open session when there is one: then the question still has to be asked.
      if (!known.has(roomId)) {
        $('ask-text').value = '';
        $('ask-dialog').close();
        await openRoomById(roomId);
        return;
      }
    }
    await state.rt.sendMessage({ roomId, text, clientMsgId: newClientMsgId() });
    $('ask-text').value = '';
    $('ask-dialog').close();
    await openRoomById(roomId);
  } catch (e) {
    if (handleAuthFailure(e)) return;
    err.textContent = errorText(e);
  } finally {
    setAskBusy(false);
  }
}

// ---- transfer and close (the session's expert) ----

function staffDetail(err) {
  // Staff see the server's (English) detail too: "has no free session slot" says more than "forbidden".
  const base = errorText(err);
  return err instanceof ApiError && err.message && err.message !== err.code && base !== err.message
    ? `${base}（${err.message}）` : base;
}

async function openTransferDialog() {
  const rs = openRoom();
  const s = rs && state.sessions.get(rs.room.id);
  if (!s || s.status !== 'active') return;
  $('transfer-error').textContent = '';
  $('transfer-note').value = '';
  $('transfer-submit').disabled = false;
  if (!state.console.data) await loadConsole();
  const d = state.console.data;
  const select = $('transfer-target');
  clear(select);
  const experts = d ? d.experts.filter((e) => e.id !== s.expert_id && e.id !== state.me.id
    && Array.isArray(e.skills) && e.skills.includes(s.product)) : [];
  const g1 = h('optgroup', { attrs: { label: t('expert.transferGroupExperts') } });
  for (const e of experts) {
    g1.appendChild(h('option', { text: `${e.name} · ${(e.skills || []).map(productLabel).join('、')}`,
      attrs: { value: `user:${e.id}` }, dataset: { userId: e.id } }));
  }
  if (!experts.length) g1.appendChild(h('option', { text: t('expert.noExperts'), attrs: { value: '', disabled: true } }));
  const g2 = h('optgroup', { attrs: { label: t('expert.transferGroupQueues') } });
  for (const p of (d ? d.products : EXPERT_PRODUCTS)) {
    g2.appendChild(h('option', { text: t('expert.transferToQueue', { product: productLabel(p) }),
      attrs: { value: `product:${p}` }, dataset: { product: p } }));
  }
  select.appendChild(g1);
  select.appendChild(g2);
  const first = select.querySelector('option:not([disabled])');
  if (first) select.value = first.value;
  $('transfer-dialog').showModal();
  select.focus();
}

async function onTransferSubmit(ev) {
  ev.preventDefault();
  const rs = openRoom();
  const s = rs && state.sessions.get(rs.room.id);
  if (!s) { $('transfer-dialog').close(); return; }
  const value = $('transfer-target').value || '';
  const [kind, ...rest] = value.split(':');
  const target = rest.join(':');
  if (!target) { $('transfer-error').textContent = t('error.invalid_payload'); return; }
  const note = $('transfer-note').value.trim();
  $('transfer-submit').disabled = true;
  $('transfer-error').textContent = '';
  state.justTransferred = s.room_id;
  try {
    const res = await state.rt.transferSession(s.room_id, kind === 'user' ? { toUserId: target, note } : { product: target, note });
    $('transfer-dialog').close();
    if (state.rooms.has(s.room_id)) {
      applySession(res.session);
      // Back to a queue and straight back to me, or I stay in the room as an admin: not "transferred away".
      if (res.session.expert_id === state.me.id || isAdmin()) state.justTransferred = null;
      if (state.openRoomId === s.room_id) renderHeader();
    }
    scheduleConsoleReload();
  } catch (err) {
    state.justTransferred = null;
    if (handleAuthFailure(err)) return;
    $('transfer-error').textContent = staffDetail(err);
  } finally {
    $('transfer-submit').disabled = false;
  }
}

function openCloseDialog() {
  const rs = openRoom();
  const s = rs && state.sessions.get(rs.room.id);
  if (!s || s.status !== 'active') return;
  $('close-error').textContent = '';
  $('close-confirm').disabled = false;
  $('close-dialog').showModal();
  $('close-cancel').focus();
}

async function onCloseSubmit(ev) {
  ev.preventDefault();
  const rs = openRoom();
  const s = rs && state.sessions.get(rs.room.id);
  if (!s) { $('close-dialog').close(); return; }
  $('close-confirm').disabled = true;
  try {
    const res = await state.rt.closeSession(s.room_id);
    applySession(res.session);
    $('close-dialog').close();
    if (state.openRoomId === s.room_id) renderHeader();
    renderRoomList();
    scheduleConsoleReload();
  } catch (err) {
    if (handleAuthFailure(err)) return;
    $('close-error').textContent = staffDetail(err);
    $('close-confirm').disabled = false;
  }
}

function bindDeskUi() {
  $('nav-board').addEventListener('click', () => showBoard());
  $('nav-console').addEventListener('click', () => showConsole());
  $('board-refresh').addEventListener('click', () => loadBoard());
  $('console-refresh').addEventListener('click', () => loadConsole());
  $('ask-expert-button').addEventListener('click', openAskDialog);
  $('ask-form').addEventListener('submit', onAskSubmit);
  $('ask-cancel').addEventListener('click', () => $('ask-dialog').close());
  $('ask-text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !e.isComposing) { e.preventDefault(); $('ask-form').requestSubmit(); }
  });
  $('transfer-button').addEventListener('click', () => { openTransferDialog().catch(() => {}); });
  $('transfer-form').addEventListener('submit', onTransferSubmit);
  $('transfer-cancel').addEventListener('click', () => $('transfer-dialog').close());
  $('close-session-button').addEventListener('click', openCloseDialog);
  $('close-form').addEventListener('submit', onCloseSubmit);
  $('close-cancel').addEventListener('click', () => $('close-dialog').close());
  $('rating-form').addEventListener('submit', onRatingSubmit);
  // What no event reports: projects whose rooms an admin is not in, and the queues for staff who are not
  // experts themselves (expert_queue goes to experts only). Polled while shown.
  setInterval(() => {
    if (!state.me || !pageVisible() || !state.rt || !state.rt.connected) return;
    if (state.view === 'board' && isAdmin()) loadBoard();
    if (state.view === 'console' && !isExpertMe()) loadConsole();
  }, DESK_POLL_MS);
}

// ---------------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------------

function bindUi() {
  $('login-form').addEventListener('submit', onLoginSubmit);
  $('invite-form').addEventListener('submit', onInviteSubmit);
  $('invite-to-login').addEventListener('click', () => { leaveInvite(); showLogin(); });
  $('lang-switch').addEventListener('click', () => setLang(getLang() === 'zh' ? 'en' : 'zh'));
  $('logout-button').addEventListener('click', () => logout());
  $('room-search').addEventListener('input', (e) => { state.filter = e.target.value; renderRoomList(); });
  $('composer').addEventListener('submit', onComposerSubmit);
  const input = $('message-input');
  input.addEventListener('keydown', (e) => {
    // Enter sends, Shift+Enter is a new line; never send while an IME (拼音) is composing.
    if (e.key === 'Enter' && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey
        && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      $('composer').requestSubmit();
    }
    if (e.key === 'Escape' && openRoom() && openRoom().replyTo) { openRoom().replyTo = null; renderReplyBar(); }
  });
  input.addEventListener('input', onComposerInput);
  input.addEventListener('blur', () => { if (!input.value.trim()) stopTypingNow(true); });
  $('reply-cancel').addEventListener('click', () => { const rs = openRoom(); if (rs) { rs.replyTo = null; renderReplyBar(); } });
  $('messages').addEventListener('scroll', () => {
    const rs = openRoom();
    if (!rs) return;
    if ($('messages').scrollTop < NEAR_TOP_PX) loadOlder(rs);
    if (atBottom()) $('new-messages').hidden = true;
  }, { passive: true });
  $('new-messages').addEventListener('click', scrollToBottom);
  const applyMembersOpen = () => {
    $('members-panel').hidden = !state.membersOpen;
    $('members-toggle').setAttribute('aria-expanded', String(state.membersOpen));
  };
  applyMembersOpen();
  $('members-toggle').addEventListener('click', () => { state.membersOpen = !state.membersOpen; applyMembersOpen(); });
  document.addEventListener('visibilitychange', () => { if (pageVisible()) markRead(openRoom()); });
  window.addEventListener('focus', () => markRead(openRoom()));
  // Back on the network: reconnect at once instead of waiting out the back-off.
  window.addEventListener('online', () => { if (state.rt && !state.rt.connected) state.rt.reconnectNow(); });
  window.addEventListener('hashchange', () => {
    const invite = takeInviteToken();
    if (invite) { // an invitation link opened in this tab: it is for its own person
      if (state.me || session.token) logout();
      inviteToken = invite;
      showInvite();
      return;
    }
    if (!state.me) return;
    if (location.hash === '#board' && isStaff()) { if (state.view !== 'board') showBoard(); return; }
    if (location.hash === '#console' && isStaff()) { if (state.view !== 'console') showConsole(); return; }
    const id = roomFromHash();
    if (id && id !== state.openRoomId && state.rooms.has(id)) selectRoom(id);
    else if (id && id === state.openRoomId && messageFromHash()) jumpToMessage(messageFromHash());
  });
  // Others' typing indicators expire on their own.
  setInterval(() => {
    const rs = openRoom();
    if (rs && rs.typing.size) renderTyping();
  }, 1000);
  bindDeskUi();
  onLangChange(() => {
    if (!state.me) return;
    renderRoomList();
    renderNav();
    if (state.view === 'board') renderBoard();
    if (state.view === 'console') renderConsole();
    if (openRoom()) {
      renderHeader();
      renderMessages({ keepPosition: true });
      renderMembers();
      renderTickets();
      renderTyping();
      renderReplyBar();
    }
  });
}

function boot() {
  applyI18n(document);
  bindUi();
  inviteToken = takeInviteToken();
  if (inviteToken) {
    session.clear(); // an invitation is for its own person, whoever was signed in in this tab
    showInvite();
  } else if (session.token) startSession();
  else showLogin();
}

boot();
