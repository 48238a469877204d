// DOM builders for the delivery desk: the project board, the expert console, expert-session badges and
// the rating stars. Like render.js, every piece of untrusted data goes in as text only, never as HTML.

import { t, has } from './i18n.js';
import { h, avatar, stageBadge, roleLabel, shortTime, fullTime } from './render.js';

export const STAGES = Object.freeze(['presales', 'implementation', 'aftersales', 'closed']);

// The products a client can ask an expert about. The server's setting `products` is the source of truth
// (get_expert_console returns it to staff), but client users cannot call get_expert_console and no other
// event tells them, so the demo/default list is kept here, in this one place. request_expert refuses an
// unknown product with invalid_payload, which the form then shows.
export const EXPERT_PRODUCTS = Object.freeze(['银企直连', '司库']);

export function productLabel(product) {
  const key = `product.${product}`;
  return has(key) ? t(key) : String(product);
}

export function productChip(product) {
  return h('span', { className: 'product-chip', testid: 'product-chip', text: productLabel(product),
    dataset: { product }, title: product });
}

export function sessionBadge(status) {
  if (!['queued', 'active', 'closed'].includes(status)) return null;
  return h('span', {
    className: `stage-badge session-badge session-${status}`, testid: 'session-badge',
    i18n: `session.status.${status}`, dataset: { status }, title: t('rooms.kind.expert'),
  });
}

function externalBadge() {
  return h('span', { className: 'badge badge-external', i18n: 'chat.external' });
}

// ---- project board ----

/**
 * Four columns, one per stage. opts: { admin, roomFor(project) -> room|null, onOpen(roomId) }.
 */
export function boardColumns(projects, { admin, roomFor, onOpen }) {
  const byStage = new Map(STAGES.map((s) => [s, []]));
  for (const p of projects) if (byStage.has(p.stage)) byStage.get(p.stage).push(p);
  const cols = [];
  for (const stage of STAGES) {
    const list = byStage.get(stage);
    list.sort((a, b) => String(a.client_org).localeCompare(String(b.client_org), 'zh-CN')
      || String(a.name).localeCompare(String(b.name), 'zh-CN'));
    cols.push(h('section', { className: `board-col board-col-${stage}`, testid: 'board-column', dataset: { stage } },
      h('header', { className: 'board-col-head' },
        stageBadge(stage),
        h('span', { className: 'board-col-count', testid: 'board-column-count', text: String(list.length) })),
      h('div', { className: 'board-cards' },
        list.length ? list.map((p) => boardCard(p, { admin, room: roomFor(p), onOpen }))
          : h('p', { className: 'board-empty', i18n: 'board.empty' }))));
  }
  return cols;
}

function boardCard(p, { admin, room, onOpen }) {
  const unstaffed = admin && Array.isArray(p.unstaffed) && p.unstaffed.length ? p.unstaffed : null;
  const unread = room ? Math.max(0, Number(room.unread) || 0) : 0;
  const canOpen = !!room;
  return h('button', {
    className: `board-card${unstaffed ? ' unstaffed' : ''}${canOpen ? '' : ' no-room'}`,
    testid: 'board-card',
    dataset: { projectId: p.id, externalId: p.external_id, stage: p.stage, roomId: p.room_id || '' },
    title: canOpen ? `${p.client_org} · ${p.name}` : t('board.notMember'),
    attrs: { type: 'button', 'aria-disabled': canOpen ? null : 'true' },
    on: { click: () => { if (canOpen) onOpen(p.room_id); } },
  },
  h('span', { className: 'board-card-top' },
    avatar(p.room_id || p.id, p.client_org, 'board-avatar'),
    h('span', { className: 'board-card-titles' },
      h('span', { className: 'board-card-name', testid: 'board-card-name', text: p.name }),
      h('span', { className: 'board-card-org', testid: 'board-card-org', text: p.client_org })),
    unread ? h('span', { className: 'unread-badge', text: unread > 99 ? '99+' : String(unread),
      title: t('rooms.unread', { count: unread }) }) : null),
  h('span', { className: 'board-card-products' }, (p.products || []).map(productChip)),
  h('span', { className: 'board-card-foot' },
    h('span', { className: 'board-card-id', text: p.external_id || '' })),
  unstaffed ? h('span', {
    className: 'board-card-unstaffed', testid: 'board-card-unstaffed',
    text: t('board.unstaffed', { roles: unstaffed.map(roleLabel).join('、') }),
  }) : null);
}

// ---- expert console ----

/** My open sessions. Each: Session + client (public user). */
export function consoleSessionItems(sessions, { onOpen, unreadFor }) {
  if (!sessions.length) return [h('li', { className: 'console-empty', testid: 'console-no-sessions', i18n: 'console.noSessions' })];
  return sessions.map((s) => {
    const c = s.client || { id: s.client_id, name: '?', org: '' };
    const unread = unreadFor(s.room_id);
    return h('li', {},
      h('button', {
        className: 'console-session', testid: 'console-session', dataset: { roomId: s.room_id, status: s.status },
        attrs: { type: 'button' }, on: { click: () => onOpen(s.room_id) },
      },
      avatar(c.id, c.name, 'console-avatar'),
      h('span', { className: 'console-session-main' },
        h('span', { className: 'console-line' },
          h('span', { className: 'console-client', testid: 'console-client', text: c.name }),
          c.kind === 'client' ? externalBadge() : null,
          unread ? h('span', { className: 'unread-badge', text: unread > 99 ? '99+' : String(unread) }) : null),
        h('span', { className: 'console-org', testid: 'console-org', text: c.org || '' }),
        h('span', { className: 'console-line console-meta' },
          productChip(s.product),
          s.assigned_at ? h('span', { className: 'console-since', text: t('console.since', { time: shortTime(s.assigned_at) }),
            title: fullTime(s.assigned_at) }) : null))));
  });
}

/** One column per product with the people waiting, in order. queue: {product: [Session + client]}. */
export function consoleQueueColumns(products, queue) {
  return products.map((product) => {
    const list = (queue && queue[product]) || [];
    return h('section', { className: 'queue-col', testid: 'queue-column', dataset: { product } },
      h('header', { className: 'queue-col-head' },
        productChip(product),
        h('span', { className: `queue-count${list.length ? ' busy' : ''}`, testid: 'queue-count', dataset: { count: list.length },
          text: list.length ? t('console.queueCount', { count: list.length }) : t('console.queueEmpty') })),
      h('ol', { className: 'queue-list' },
        list.map((s, i) => {
          const c = s.client || { id: s.client_id, name: '?', org: '' };
          return h('li', { className: 'queue-entry', testid: 'queue-entry', dataset: { roomId: s.room_id } },
            h('span', { className: 'queue-pos', text: t('console.position', { n: s.position || i + 1 }) }),
            h('span', { className: 'queue-main' },
              h('span', { className: 'console-line' },
                h('span', { className: 'console-client', text: c.name }), c.kind === 'client' ? externalBadge() : null),
              h('span', { className: 'console-org', text: c.org || '' })),
            s.requested_at ? h('span', { className: 'queue-since', text: t('console.waiting', { time: shortTime(s.requested_at) }),
              title: fullTime(s.requested_at) }) : null);
        })));
  });
}

// ---- rating ----

/** Five star buttons; value 0 = none picked. */
export function ratingStars(value, onPick) {
  const stars = [];
  for (let n = 1; n <= 5; n += 1) {
    stars.push(h('button', {
      className: `star${n <= value ? ' on' : ''}`, testid: 'rating-star', text: '★',
      dataset: { value: n }, title: t('rating.star', { n }),
      attrs: { type: 'button', role: 'radio', 'aria-checked': n === value ? 'true' : 'false', 'aria-label': t('rating.star', { n }) },
      on: { click: () => onPick(n) },
    }));
  }
  return stars;
}

export function starsText(n) {
  const k = Math.max(0, Math.min(5, Number(n) || 0));
  return '★'.repeat(k) + '☆'.repeat(5 - k);
}
