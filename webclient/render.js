// DOM builders. Every piece of untrusted data (message text, names, organisations, room titles …)
// goes into the page through textContent / createTextNode only; this module never uses innerHTML.

import { t, has, locale } from './i18n.js';

/**
 * Create an element. attrs: className, testid, text, title, dataset{}, attrs{}, on{event: fn}.
 * Children: Node | string (added as a text node) | null/false (skipped) | arrays of those.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  const { className, testid, text, title, dataset, attrs: plain, on, i18n } = attrs;
  if (className) el.className = className;
  if (testid) el.dataset.testid = testid;
  if (i18n) { el.dataset.i18n = i18n; el.textContent = t(i18n); }
  if (text !== undefined && text !== null) el.textContent = String(text);
  if (title) el.title = String(title);
  if (dataset) for (const [k, v] of Object.entries(dataset)) el.dataset[k] = String(v);
  if (plain) for (const [k, v] of Object.entries(plain)) {
    if (v === false || v === null || v === undefined) continue;
    el.setAttribute(k, v === true ? '' : String(v));
  }
  if (on) for (const [ev, fn] of Object.entries(on)) el.addEventListener(ev, fn);
  appendChildren(el, children);
  return el;
}

function appendChildren(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) appendChildren(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

// ---- formatting ----

const STAGES = ['presales', 'implementation', 'aftersales', 'closed'];

export function stageBadge(stage) {
  if (!STAGES.includes(stage)) return null;
  return h('span', { className: `stage-badge stage-${stage}`, testid: 'stage-badge', i18n: `stage.${stage}`,
    dataset: { stage } });
}

export function roleLabel(role) {
  if (!role) return '';
  const key = `role.${role}`;
  return has(key) ? t(key) : role;
}

/** Initial for the avatar: first visible character of the name (works for 汉字 and Latin). */
export function initial(name) {
  const s = String(name || '?').trim();
  const ch = Array.from(s)[0] || '?';
  return ch.toUpperCase();
}

/** A stable pleasant hue from an id, for avatars. */
export function hue(id) {
  let x = 0;
  for (const ch of String(id || '')) x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return x % 360;
}

export function avatar(id, name, extraClass = '') {
  const el = h('span', { className: `avatar ${extraClass}`.trim(), text: initial(name), attrs: { 'aria-hidden': 'true' } });
  el.style.setProperty('--avatar-hue', String(hue(id)));
  return el;
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** Short local time: "14:05" today, "昨天 14:05", "12月1日 14:05", or with year when not this year. */
export function shortTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const now = new Date();
  const time = new Intl.DateTimeFormat(locale(), { hour: '2-digit', minute: '2-digit', hour12: false }).format(d);
  if (sameDay(d, now)) return time;
  const y = new Date(now); y.setDate(now.getDate() - 1);
  if (sameDay(d, y)) return `${t('chat.dateYesterday')} ${time}`;
  const opts = d.getFullYear() === now.getFullYear()
    ? { month: 'short', day: 'numeric' } : { year: 'numeric', month: 'short', day: 'numeric' };
  return `${new Intl.DateTimeFormat(locale(), opts).format(d)} ${time}`;
}

/** Compact time for the room list: time today, otherwise the date. */
export function listTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const now = new Date();
  if (sameDay(d, now)) {
    return new Intl.DateTimeFormat(locale(), { hour: '2-digit', minute: '2-digit', hour12: false }).format(d);
  }
  return new Intl.DateTimeFormat(locale(), { month: 'numeric', day: 'numeric' }).format(d);
}

export function fullTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Intl.DateTimeFormat(locale(), {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  }).format(d);
}

// Plain http(s) links become anchors; everything else stays text. The href is built from the
// matched text and checked to be http(s), so no javascript: or data: URL can get through.
const URL_RE = /\bhttps?:\/\/[^\s<>"'（），。；！？、]+/g;

export function messageTextNodes(text) {
  const nodes = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let url = m[0].replace(/[.,;:!?)\]}]+$/, '');
    if (m.index > last) nodes.push(document.createTextNode(text.slice(last, m.index)));
    let safe = null;
    try {
      const u = new URL(url);
      if (u.protocol === 'http:' || u.protocol === 'https:') safe = u.href;
    } catch { /* not a URL */ }
    if (safe) {
      const a = document.createElement('a');
      a.href = safe;
      a.target = '_blank';
      a.rel = 'noopener noreferrer nofollow';
      a.textContent = url;
      nodes.push(a);
    } else {
      nodes.push(document.createTextNode(url));
    }
    last = m.index + url.length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

export function snippet(text, max = 60) {
  const s = String(text || '').replace(/\s+/g, ' ').trim();
  const chars = Array.from(s);
  return chars.length > max ? `${chars.slice(0, max).join('')}…` : s;
}

// ---- room list ----

export function previewText(room, me) {
  const m = room.last_message;
  if (!m) return t('rooms.noMessages');
  const who = m.sender && me && m.sender.id === me.id ? t('chat.you') : (m.sender ? m.sender.name : '');
  const body = m.deleted ? t('chat.deleted') : snippet(m.text, 80);
  const prefix = m.internal ? `[${t('chat.internal')}] ` : '';
  return who ? `${prefix}${who}：${body}` : `${prefix}${body}`;
}

/** One row of the room list. kindBadge: an optional badge for rooms without a stage (an expert session's status). */
export function roomItem(room, { active, me, onOpen, kindBadge = null }) {
  const unread = Math.max(0, Number(room.unread) || 0);
  const stage = room.project && room.project.stage;
  const title = room.title || (room.project && room.project.name) || room.id;
  const lastAt = room.last_message && room.last_message.created_at;
  const btn = h('button', {
    className: `room-item${active ? ' active' : ''}${unread ? ' has-unread' : ''}`,
    testid: 'room-item',
    dataset: { roomId: room.id, kind: room.kind || '' },
    attrs: { type: 'button', 'aria-current': active ? 'true' : null },
    on: { click: () => onOpen(room.id) },
  },
  avatar(room.id, (room.project && room.project.client_org) || title, 'room-avatar'),
  h('span', { className: 'room-main' },
    h('span', { className: 'room-line' },
      h('span', { className: 'room-title', testid: 'room-title', text: title, title }),
      lastAt ? h('span', { className: 'room-time', text: listTime(lastAt), title: fullTime(lastAt) }) : null),
    h('span', { className: 'room-line' },
      stage ? stageBadge(stage) : (room.kind === 'expert'
        ? (kindBadge || h('span', { className: 'stage-badge stage-expert', i18n: 'rooms.kind.expert' })) : null),
      h('span', { className: 'room-preview', testid: 'room-preview', text: previewText(room, me) }),
      unread ? h('span', {
        className: 'unread-badge', testid: 'unread-badge', text: unread > 99 ? '99+' : String(unread),
        title: t('rooms.unread', { count: unread }),
        attrs: { 'aria-label': t('rooms.unread', { count: unread }) },
      }) : null)));
  return h('li', { className: 'room-li' }, btn);
}

// ---- messages ----

/**
 * Build one message element. ctx: { me, canModerate, replyTarget(msg) -> msg|null, readers(msg) -> [names],
 * othersCount, onEdit, onDelete, onReply }.
 */
export function messageItem(msg, ctx) {
  const sender = msg.sender || { id: '', name: '?', org: '', kind: 'staff' };
  const own = ctx.me && sender.id === ctx.me.id;
  const classes = ['msg'];
  if (own) classes.push('own');
  if (sender.kind === 'client') classes.push('from-client');
  if (sender.kind === 'bot') classes.push('from-bot');
  if (msg.internal) classes.push('internal');
  if (msg.deleted) classes.push('deleted');
  // The server computes whom a message mentions (@真实姓名); shown as a badge, the text stays plain text.
  const mentionsMe = !!ctx.me && !msg.deleted && Array.isArray(msg.mentions) && msg.mentions.includes(ctx.me.id);
  if (mentionsMe) classes.push('mentions-me');

  const meta = h('div', { className: 'msg-meta' },
    h('span', { className: 'msg-sender', testid: 'message-sender', text: sender.name }),
    sender.org ? h('span', { className: 'msg-org', testid: 'message-org', text: sender.org }) : null,
    sender.kind === 'client' ? h('span', { className: 'badge badge-external', testid: 'external-badge', i18n: 'chat.external' }) : null,
    sender.kind === 'bot' ? h('span', { className: 'badge badge-bot', i18n: 'kind.bot' }) : null,
    msg.internal ? h('span', { className: 'badge badge-internal', testid: 'internal-badge', i18n: 'chat.internal' }) : null,
    mentionsMe ? h('span', { className: 'badge badge-mention', testid: 'mention-badge', i18n: 'chat.mentionsYou' }) : null,
    h('time', {
      className: 'msg-time', testid: 'message-time', text: shortTime(msg.created_at),
      title: fullTime(msg.created_at), attrs: { datetime: msg.created_at },
    }),
    msg.edited_at && !msg.deleted ? h('span', {
      className: 'msg-edited', testid: 'edited-marker', i18n: 'chat.edited', title: fullTime(msg.edited_at),
    }) : null);

  let reply = null;
  if (msg.reply_to && !msg.deleted) {
    const target = ctx.replyTarget(msg.reply_to);
    reply = h('div', { className: 'msg-reply', testid: 'message-reply' },
      target
        ? [h('span', { className: 'msg-reply-who', text: t('chat.replyTo', { name: target.sender ? target.sender.name : '' }) }),
          h('span', { className: 'msg-reply-text', text: target.deleted ? t('chat.deleted') : snippet(target.text, 80) })]
        : h('span', { className: 'msg-reply-who', i18n: 'chat.replyUnknown' }));
  }

  const body = msg.deleted
    ? h('div', { className: 'msg-text msg-tombstone', testid: 'message-deleted', i18n: 'chat.deleted' })
    : h('div', { className: 'msg-text', testid: 'message-text' }, messageTextNodes(String(msg.text ?? '')));

  let actions = null;
  if (!msg.deleted && !ctx.readOnly) {
    const mayModify = own || ctx.canModerate;
    actions = h('div', { className: 'msg-actions', attrs: { role: 'toolbar' } },
      h('button', { className: 'icon-btn', testid: 'reply-button', i18n: 'chat.reply', attrs: { type: 'button' },
        on: { click: () => ctx.onReply(msg) } }),
      mayModify ? h('button', { className: 'icon-btn', testid: 'edit-button', i18n: 'chat.edit', attrs: { type: 'button' },
        on: { click: () => ctx.onEdit(msg) } }) : null,
      mayModify ? h('button', { className: 'icon-btn danger', testid: 'delete-button', i18n: 'chat.delete', attrs: { type: 'button' },
        on: { click: () => ctx.onDelete(msg) } }) : null);
  }

  const footer = h('div', { className: 'msg-footer' });
  const li = h('li', {
    className: classes.join(' '), testid: 'message',
    dataset: { seq: msg.seq, id: msg.id, senderKind: sender.kind || '' },
  },
  avatar(sender.id, sender.name, 'msg-avatar'),
  h('div', { className: 'msg-body' }, meta, reply, body, footer),
  actions);
  if (own && !msg.deleted) updateReceipt(li, msg, ctx);
  return li;
}

/** Refresh the "read by" line of one of my own messages. */
export function updateReceipt(li, msg, ctx) {
  const footer = li.querySelector('.msg-footer');
  if (!footer) return;
  clear(footer);
  if (msg.deleted) return;
  const names = ctx.readers(msg);
  let text;
  if (names.length === 0) text = t('chat.unreadState');
  else if (ctx.othersCount > 0 && names.length >= ctx.othersCount) text = t('chat.readByAll');
  else text = t('chat.readBy', { count: names.length });
  footer.appendChild(h('span', {
    className: `msg-receipt${names.length ? ' read' : ''}`, testid: 'read-receipt', text,
    title: names.length ? t('chat.readByNames', { names: names.join('、') }) : '',
    dataset: { count: names.length },
  }));
}

export function pendingItem(p, me, { onRetry, onDiscard }) {
  const failed = p.status === 'failed';
  return h('li', {
    className: `msg own pending${failed ? ' failed' : ''}${p.internal ? ' internal' : ''}`,
    testid: failed ? 'message-failed' : 'message-pending',
    dataset: { clientMsgId: p.clientMsgId },
  },
  avatar(me.id, me.name, 'msg-avatar'),
  h('div', { className: 'msg-body' },
    h('div', { className: 'msg-meta' },
      h('span', { className: 'msg-sender', text: me.name }),
      me.org ? h('span', { className: 'msg-org', text: me.org }) : null,
      p.internal ? h('span', { className: 'badge badge-internal', i18n: 'chat.internal' }) : null,
      failed ? null : h('span', { className: 'msg-time', i18n: 'chat.sending' })),
    h('div', { className: 'msg-text', testid: 'message-text' }, messageTextNodes(p.text)),
    failed ? h('div', { className: 'msg-error', attrs: { role: 'alert' } },
      h('span', { testid: 'send-error', text: t('chat.sendFailed', { message: p.error || '' }) }),
      h('button', { className: 'link-btn', testid: 'retry-button', i18n: 'chat.retry', attrs: { type: 'button' },
        on: { click: () => onRetry(p) } }),
      h('button', { className: 'link-btn', testid: 'discard-button', i18n: 'chat.discard', attrs: { type: 'button' },
        on: { click: () => onDiscard(p) } })) : null));
}

// ---- members ----

export function memberItem(m, me) {
  const u = m.user || {};
  const isMe = me && u.id === me.id;
  return h('li', {
    className: `member${m.online ? ' online' : ''}`, testid: 'member-item',
    dataset: { userId: u.id, online: m.online ? 'true' : 'false' },
  },
  h('span', { className: 'member-avatar-wrap' },
    avatar(u.id, u.name, 'member-avatar'),
    h('span', {
      className: `presence-dot${m.online ? ' on' : ''}`, testid: 'presence-dot',
      title: t(m.online ? 'members.online' : 'members.offline'),
      attrs: { 'aria-label': t(m.online ? 'members.online' : 'members.offline') },
    })),
  h('span', { className: 'member-main' },
    h('span', { className: 'member-line' },
      h('span', { className: 'member-name', testid: 'member-name', text: isMe ? `${u.name}（${t('chat.you')}）` : u.name }),
      u.kind === 'client' ? h('span', { className: 'badge badge-external', i18n: 'chat.external' }) : null,
      u.kind === 'bot' ? h('span', { className: 'badge badge-bot', i18n: 'kind.bot' }) : null),
    h('span', { className: 'member-sub', text: [u.org, roleLabel(m.role)].filter(Boolean).join(' · ') })));
}

// ---- tickets ----

export const TICKET_STATUSES = ['open', 'in_progress', 'resolved', 'closed'];
// The moves the server allows (chatserver/models.py TICKET_MOVES); the selector offers only these.
export const TICKET_MOVES = {
  open: ['in_progress', 'resolved', 'closed'],
  in_progress: ['open', 'resolved', 'closed'],
  resolved: ['in_progress', 'closed'],
  closed: ['open'],
};

/** One ticket in the room's tickets panel. opts: {canChange, onStatus(ticket, status), onJump(ticket)}. */
export function ticketItem(ticket, { canChange = false, onStatus = null, onJump = null } = {}) {
  const status = TICKET_STATUSES.includes(ticket.status) ? ticket.status : 'open';
  let control;
  if (canChange) {
    control = h('select', {
      className: 'ticket-status-select', testid: 'ticket-status-select',
      attrs: { 'aria-label': t('tickets.changeStatus', { number: ticket.number }) },
      on: { change: (ev) => onStatus && onStatus(ticket, ev.target.value) },
    }, [status, ...TICKET_MOVES[status]].map((s) => {
      const o = h('option', { text: t(`ticket.status.${s}`), attrs: { value: s } });
      if (s === status) o.selected = true;
      return o;
    }));
  }
  return h('li', {
    className: `ticket ticket-${status}`, testid: 'ticket-item',
    dataset: { number: ticket.number, status },
  },
  h('div', { className: 'ticket-line' },
    h('span', { className: 'ticket-number', testid: 'ticket-number', text: `#${ticket.number}` }),
    h('span', { className: 'ticket-title', testid: 'ticket-title', text: ticket.title, title: ticket.title }),
    ticket.internal ? h('span', { className: 'badge badge-internal', i18n: 'chat.internal' }) : null),
  h('div', { className: 'ticket-line ticket-sub' },
    h('span', { className: `ticket-status status-${status}`, testid: 'ticket-status', i18n: `ticket.status.${status}`,
      dataset: { status } }),
    control || null,
    h('a', {
      className: 'ticket-link', testid: 'ticket-link', i18n: 'tickets.source',
      attrs: { href: `#room=${encodeURIComponent(ticket.room_id)}&msg=${encodeURIComponent(ticket.source_message_id)}` },
      on: { click: (ev) => { if (onJump) { ev.preventDefault(); onJump(ticket); } } },
    })));
}
