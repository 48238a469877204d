// REST calls and the Socket.IO connection. Nothing here touches the DOM.

import { io } from './vendor/socket.io.esm.min.js';

const TOKEN_KEY = 'cloudAdvisor.token';
const USER_KEY = 'cloudAdvisor.user';

export class ApiError extends Error {
  constructor(code, message, status = 0) {
    super(message || code);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}

// ---- session (token lives in sessionStorage: gone when the tab closes) ----

export const session = {
  get token() {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; }
  },
  get user() {
    try { return JSON.parse(sessionStorage.getItem(USER_KEY) || 'null'); } catch { return null; }
  },
  save(token, user) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(USER_KEY, JSON.stringify(user));
  },
  setUser(user) {
    sessionStorage.setItem(USER_KEY, JSON.stringify(user));
  },
  clear() {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
      sessionStorage.removeItem(USER_KEY);
    } catch { /* ignore */ }
  },
};

// ---- REST ----

async function request(method, path, body, { auth = true } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth) {
    const token = session.token;
    if (!token) throw new ApiError('unauthorized', 'no token', 401);
    headers.Authorization = `Bearer ${token}`;
  }
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError('network', String(err && err.message || err), 0);
  }
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok || !data || data.ok === false) {
    const e = (data && data.error) || {};
    const code = e.code || (res.status === 401 ? 'unauthorized' : 'internal_error');
    throw new ApiError(code, e.message || res.statusText, res.status);
  }
  return data;
}

export function login(username, password) {
  return request('POST', '/api/auth/login', { username, password }, { auth: false });
}

/** Set the password with the one-time token from an invitation email; answers like login ({token, user}). */
export function acceptInvitation(token, password) {
  return request('POST', '/api/invitations/accept', { token, password }, { auth: false });
}

export function getMe() {
  return request('GET', '/api/me');
}

export function getRooms() {
  return request('GET', '/api/rooms');
}

// Tickets (docs/protocol.md: REST, tickets).
export function getTickets(roomId) {
  return request('GET', `/api/rooms/${encodeURIComponent(roomId)}/tickets`);
}

export function setTicketStatus(number, status) {
  return request('PATCH', `/api/tickets/${encodeURIComponent(number)}`, { status });
}

// ---- Socket.IO ----

const ACK_TIMEOUT_MS = 15000;

/**
 * Thin wrapper around a Socket.IO client: promise-returning requests with acks,
 * and the raw socket for event subscriptions.
 */
export class Realtime {
  constructor(token) {
    this.socket = io({
      path: '/socket.io/',
      auth: { token },
      autoConnect: false,
      reconnection: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
      randomizationFactor: 0.3,
      timeout: 10000,
    });
  }

  connect() { this.socket.connect(); }

  close() {
    this.socket.removeAllListeners();
    this.socket.io.removeAllListeners?.();
    this.socket.disconnect();
  }

  get connected() { return this.socket.connected; }

  /** Try to reconnect now rather than at the end of the current back-off (e.g. the network is back). */
  reconnectNow() {
    if (this.socket.connected) return;
    this.socket.disconnect();
    this.socket.connect();
  }

  on(event, fn) { this.socket.on(event, fn); }

  /** Emit an event and resolve with the ack body; reject with ApiError on {ok:false} or timeout. */
  request(event, payload, timeoutMs = ACK_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      this.socket.timeout(timeoutMs).emit(event, payload, (err, res) => {
        if (err) {
          reject(new ApiError('timeout', 'no answer from server'));
        } else if (!res || typeof res !== 'object') {
          reject(new ApiError('internal_error', 'malformed answer'));
        } else if (res.ok === false || !res.ok) {
          const e = res.error || {};
          reject(new ApiError(e.code || 'internal_error', e.message || ''));
        } else {
          resolve(res);
        }
      });
    });
  }

  listRooms() { return this.request('list_rooms', {}); }
  getMembers(roomId) { return this.request('get_members', { room_id: roomId }); }

  getHistory(roomId, { beforeSeq, afterSeq, limit } = {}) {
    const p = { room_id: roomId };
    if (beforeSeq !== undefined && beforeSeq !== null) p.before_seq = beforeSeq;
    if (afterSeq !== undefined && afterSeq !== null) p.after_seq = afterSeq;
    if (limit) p.limit = limit;
    return this.request('get_history', p);
  }

  sendMessage({ roomId, text, clientMsgId, replyTo, internal }) {
    const p = { room_id: roomId, text, client_msg_id: clientMsgId };
    if (replyTo) p.reply_to = replyTo;
    if (internal) p.internal = true;
    return this.request('send_message', p);
  }

  editMessage(messageId, text) { return this.request('edit_message', { message_id: messageId, text }); }
  deleteMessage(messageId) { return this.request('delete_message', { message_id: messageId }); }
  markRead(roomId, seq) { return this.request('mark_read', { room_id: roomId, seq }); }
  setTyping(roomId, typing) { return this.request('set_typing', { room_id: roomId, typing }, 5000); }

  // Projects and the expert desk (docs/protocol.md).
  listProjects() { return this.request('list_projects', {}); }
  requestExpert(product, text) { return this.request('request_expert', { product, text }); }
  getExpertSession(roomId) { return this.request('get_expert_session', { room_id: roomId }); }
  getExpertConsole() { return this.request('get_expert_console', {}); }
  closeSession(roomId) { return this.request('close_session', { room_id: roomId }); }

  /** target: {toUserId} or {product}; the note (optional) becomes an internal note in the room. */
  transferSession(roomId, { toUserId, product, note }) {
    const p = { room_id: roomId };
    if (toUserId) p.to_user_id = toUserId;
    else p.product = product;
    if (note) p.note = note;
    return this.request('transfer_session', p);
  }

  rateSession(roomId, rating, comment) {
    const p = { room_id: roomId, rating };
    if (comment) p.comment = comment;
    return this.request('rate_session', p);
  }
}
