// All user-visible strings of the web client, in 简体中文 (default) and English.
// Static markup uses data-i18n / data-i18n-placeholder / data-i18n-title / data-i18n-aria-label
// attributes; dynamic code calls t(key, params). Values are always inserted as text, never as HTML.

const STORAGE_KEY = 'cloudAdvisor.lang';

const STRINGS = {
  zh: {
    'app.name': '云顾问',
    'app.tagline': '交易银行 · 对公客户交付协作',
    'login.title': '登录云顾问',
    'login.subtitle': '请使用行内或企业账号登录',
    'login.username': '用户名',
    'login.password': '密码',
    'login.submit': '登录',
    'login.submitting': '正在登录…',
    'login.error.credentials': '用户名或密码错误',
    'login.error.network': '无法连接服务器，请稍后重试',
    'login.error.generic': '登录失败：{message}',
    'login.footer': '实名制协作 · 外部成员均有标识 · 会话内容受审计',
    'login.sessionExpired': '登录已失效，请重新登录',
    'top.logout': '退出登录',
    'top.langSwitch': 'English',
    'top.langSwitch.title': 'Switch to English',
    'conn.connecting': '正在连接…',
    'conn.online': '已连接',
    'conn.offline': '连接已断开，正在重连…',
    'conn.syncing': '正在同步离线期间的消息…',
    'rooms.title': '项目会话',
    'rooms.empty': '暂无会话',
    'rooms.noMessages': '暂无消息',
    'rooms.unread': '{count} 条未读',
    'rooms.search': '搜索会话',
    'rooms.kind.expert': '专家咨询',
    'stage.presales': '售前',
    'stage.implementation': '售中',
    'stage.aftersales': '售后',
    'stage.closed': '结项',
    'chat.placeholder.title': '选择一个会话开始协作',
    'chat.placeholder.body': '左侧列出了您参与的项目会话与专家咨询。',
    'chat.loadingOlder': '正在加载更早的消息…',
    'chat.noOlder': '— 已显示全部历史消息 —',
    'chat.loadOlderFailed': '加载历史消息失败，向上滚动重试',
    'chat.newMessages': '有新消息 ↓',
    'chat.external': '外部',
    'chat.internal': '内部备注',
    'chat.edited': '(已编辑)',
    'chat.deleted': '消息已删除',
    'chat.you': '我',
    'chat.sending': '发送中…',
    'chat.sendFailed': '发送失败：{message}',
    'chat.retry': '重试',
    'chat.discard': '放弃',
    'chat.edit': '编辑',
    'chat.delete': '删除',
    'chat.reply': '回复',
    'chat.save': '保存',
    'chat.cancel': '取消',
    'chat.confirmDelete': '确定删除这条消息？',
    'chat.confirm': '删除',
    'chat.replyTo': '回复 {name}：',
    'chat.replyUnknown': '回复一条较早的消息',
    'chat.cancelReply': '取消回复',
    'chat.readBy': '{count} 人已读',
    'chat.readByAll': '全部已读',
    'chat.readByNames': '已读：{names}',
    'chat.unreadState': '已发送',
    'chat.readOnly': '该项目已结项，会话为只读存档。',
    'chat.roomRemoved': '您已不在该会话中。',
    'chat.typing.one': '{name} 正在输入…',
    'chat.typing.two': '{a}、{b} 正在输入…',
    'chat.typing.many': '{count} 人正在输入…',
    'chat.dateToday': '今天',
    'chat.dateYesterday': '昨天',
    'composer.placeholder': '输入消息，Enter 发送，Shift+Enter 换行',
    'composer.send': '发送',
    'composer.internal': '内部备注（客户不可见）',
    'composer.internalHint': '内部备注仅行内成员可见',
    'members.title': '成员',
    'members.online': '在线',
    'members.offline': '离线',
    'members.toggle': '成员',
    'members.count': '{online}/{total} 在线',
    'role.account_manager': '客户经理',
    'role.solution_expert': '方案专家',
    'role.service_specialist': '服务专员',
    'role.developer': '研发人员',
    'role.after_sales': '售后',
    'role.admin': '管理员',
    'role.client_admin': '客户管理员',
    'role.client_member': '客户成员',
    'role.client_contact': '客户联系人',
    'role.bot': '机器人',
    'kind.bot': '机器人',
    'error.empty_text': '消息不能为空',
    'error.text_too_long': '消息过长',
    'error.forbidden': '没有权限执行此操作',
    'error.not_found': '会话或消息不存在',
    'error.room_read_only': '该会话已结项，为只读',
    'error.rate_limited': '操作过于频繁，请稍后再试',
    'error.unavailable': '服务器正在维护，请稍后再试',
    'error.invalid_payload': '请求格式不正确',
    'error.internal_error': '服务器内部错误',
    'error.unauthorized': '登录已失效',
    'error.timeout': '网络超时',
    'error.network': '网络连接异常',
  },
  en: {
    'app.name': 'Cloud Advisor',
    'app.tagline': 'Transaction banking · corporate client delivery',
    'login.title': 'Sign in to Cloud Advisor',
    'login.subtitle': 'Use your bank or company account',
    'login.username': 'Username',
    'login.password': 'Password',
    'login.submit': 'Sign in',
    'login.submitting': 'Signing in…',
    'login.error.credentials': 'Wrong username or password',
    'login.error.network': 'Cannot reach the server, please try again',
    'login.error.generic': 'Sign-in failed: {message}',
    'login.footer': 'Real-name collaboration · external members are labelled · conversations are audited',
    'login.sessionExpired': 'Your session has expired, please sign in again',
    'top.logout': 'Sign out',
    'top.langSwitch': '中文',
    'top.langSwitch.title': '切换到中文',
    'conn.connecting': 'Connecting…',
    'conn.online': 'Connected',
    'conn.offline': 'Connection lost, reconnecting…',
    'conn.syncing': 'Catching up on missed messages…',
    'rooms.title': 'Conversations',
    'rooms.empty': 'No conversations yet',
    'rooms.noMessages': 'No messages yet',
    'rooms.unread': '{count} unread',
    'rooms.search': 'Search conversations',
    'rooms.kind.expert': 'Expert consultation',
    'stage.presales': 'Presales',
    'stage.implementation': 'Implementation',
    'stage.aftersales': 'Aftersales',
    'stage.closed': 'Closed',
    'chat.placeholder.title': 'Select a conversation',
    'chat.placeholder.body': 'Your project rooms and expert consultations are listed on the left.',
    'chat.loadingOlder': 'Loading earlier messages…',
    'chat.noOlder': '— Beginning of the conversation —',
    'chat.loadOlderFailed': 'Could not load history; scroll up to retry',
    'chat.newMessages': 'New messages ↓',
    'chat.external': 'External',
    'chat.internal': 'Internal note',
    'chat.edited': '(edited)',
    'chat.deleted': 'Message deleted',
    'chat.you': 'Me',
    'chat.sending': 'Sending…',
    'chat.sendFailed': 'Not sent: {message}',
    'chat.retry': 'Retry',
    'chat.discard': 'Discard',
    'chat.edit': 'Edit',
    'chat.delete': 'Delete',
    'chat.reply': 'Reply',
    'chat.save': 'Save',
    'chat.cancel': 'Cancel',
    'chat.confirmDelete': 'Delete this message?',
    'chat.confirm': 'Delete',
    'chat.replyTo': 'Reply to {name}: ',
    'chat.replyUnknown': 'Reply to an earlier message',
    'chat.cancelReply': 'Cancel reply',
    'chat.readBy': 'Read by {count}',
    'chat.readByAll': 'Read by all',
    'chat.readByNames': 'Read by: {names}',
    'chat.unreadState': 'Sent',
    'chat.readOnly': 'This project is closed; the conversation is a read-only archive.',
    'chat.roomRemoved': 'You are no longer a member of this conversation.',
    'chat.typing.one': '{name} is typing…',
    'chat.typing.two': '{a} and {b} are typing…',
    'chat.typing.many': '{count} people are typing…',
    'chat.dateToday': 'Today',
    'chat.dateYesterday': 'Yesterday',
    'composer.placeholder': 'Type a message; Enter to send, Shift+Enter for a new line',
    'composer.send': 'Send',
    'composer.internal': 'Internal note (hidden from clients)',
    'composer.internalHint': 'Internal notes are visible to bank staff only',
    'members.title': 'Members',
    'members.online': 'Online',
    'members.offline': 'Offline',
    'members.toggle': 'Members',
    'members.count': '{online}/{total} online',
    'role.account_manager': 'Account manager',
    'role.solution_expert': 'Solution expert',
    'role.service_specialist': 'Service specialist',
    'role.developer': 'Developer',
    'role.after_sales': 'After-sales',
    'role.admin': 'Administrator',
    'role.client_admin': 'Client admin',
    'role.client_member': 'Client member',
    'role.client_contact': 'Client contact',
    'role.bot': 'Bot',
    'kind.bot': 'Bot',
    'error.empty_text': 'The message is empty',
    'error.text_too_long': 'The message is too long',
    'error.forbidden': 'You are not allowed to do that',
    'error.not_found': 'No such conversation or message',
    'error.room_read_only': 'This conversation is closed (read-only)',
    'error.rate_limited': 'Too many actions, please wait a moment',
    'error.unavailable': 'The server is under maintenance, please try again later',
    'error.invalid_payload': 'Malformed request',
    'error.internal_error': 'Internal server error',
    'error.unauthorized': 'Your session has expired',
    'error.timeout': 'Network timeout',
    'error.network': 'Network error',
  },
};

export const LANGS = Object.freeze(Object.keys(STRINGS));

function initialLang() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved && STRINGS[saved]) return saved;
  } catch { /* storage unavailable */ }
  return 'zh';
}

let current = initialLang();
const listeners = new Set();

export function getLang() {
  return current;
}

/** BCP 47 tag for Intl formatting and the <html lang> attribute. */
export function locale() {
  return current === 'zh' ? 'zh-CN' : 'en-GB';
}

export function setLang(lang) {
  if (!STRINGS[lang] || lang === current) return;
  current = lang;
  try { localStorage.setItem(STORAGE_KEY, lang); } catch { /* ignore */ }
  document.documentElement.lang = locale();
  applyI18n(document);
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Translate a key, substituting {name} placeholders with the given params (as plain text). */
export function t(key, params) {
  const table = STRINGS[current];
  let s = Object.prototype.hasOwnProperty.call(table, key) ? table[key]
    : (Object.prototype.hasOwnProperty.call(STRINGS.zh, key) ? STRINGS.zh[key] : key);
  if (params) {
    s = s.replace(/\{(\w+)\}/g, (m, name) =>
      (Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : m));
  }
  return s;
}

export function has(key) {
  return Object.prototype.hasOwnProperty.call(STRINGS[current], key);
}

/** Fill every element under root that carries a data-i18n* attribute. */
export function applyI18n(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll('[data-i18n-title]')) {
    el.title = t(el.dataset.i18nTitle);
  }
  for (const el of root.querySelectorAll('[data-i18n-aria-label]')) {
    el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  }
  if (root === document) document.title = t('app.name');
}

document.documentElement.lang = locale();
