// SPDX-License-Identifier: MIT
// The owner's console (docs/console.md): plain JavaScript, no build step,
// nothing from another origin. Logs in with the cookie session
// (POST /api/v1/auth/login; the cookie is HttpOnly, the page keeps only
// the CSRF token in memory), shows GET /api/v1/admin/overview with inline
// SVG charts and asks again every 10 s. Whether the caller may see it is
// the server's decision: a 403 is shown as the server worded it.
'use strict';

(function () {
	var REFRESH_MS = 10000;
	var SVGNS = 'http://www.w3.org/2000/svg';
	var csrf = null;
	var timer = null;
	var user = null;

	function $(id) {
		return document.getElementById(id);
	}

	// ---- own errors -> POST /api/v1/client-errors, rate limited here ------
	// At most 5 reports a minute and each distinct message once a page
	// load: a loop of errors must not become a loop of requests.
	var sent = {};
	var reportTimes = [];
	// The body is the schema of POST /api/v1/client-errors
	// (docs/api/errors.md): message, source, line, column, stack, url.
	function report(message, source, line, column, stack) {
		var now = Date.now();
		var key = String(message);
		reportTimes = reportTimes.filter(function (t) {
			return now - t < 60000;
		});
		if (sent[key] || reportTimes.length >= 5)
			return;
		sent[key] = true;
		reportTimes.push(now);
		var body = {
			message: String(message || 'unknown error').slice(0, 1000),
			source: String(source || '').slice(0, 2000),
			line: Math.max(line | 0, 0),
			column: Math.max(column | 0, 0),
			stack: String(stack || '').slice(0, 8000),
			url: location.pathname
		};
		var h = { 'Content-Type': 'application/json' };
		if (csrf)
			h['X-CSRF-Token'] = csrf;
		try {
			fetch('/api/v1/client-errors', {
				method: 'POST',
				credentials: 'same-origin',
				headers: h,
				body: JSON.stringify(body)
			}).catch(function () {});
		} catch (e) {
			// Reporting must never throw.
		}
	}
	window.addEventListener('error', function (ev) {
		report(ev.message, ev.filename, ev.lineno, ev.colno,
		    ev.error && ev.error.stack);
	});
	window.addEventListener('unhandledrejection', function (ev) {
		var r = ev.reason || {};
		report('unhandled rejection: ' + (r.message || String(ev.reason)),
		    '', 0, 0, r.stack);
	});

	// ---- HTTP --------------------------------------------------------------
	// api(method, path, body): {status, body (parsed JSON or null), headers}.
	function api(method, path, body) {
		var h = { Accept: 'application/json' };
		var opt = { method: method, credentials: 'same-origin', headers: h,
			cache: 'no-store' };
		if (method !== 'GET' && method !== 'HEAD') {
			if (csrf)
				h['X-CSRF-Token'] = csrf;
			if (body !== undefined) {
				h['Content-Type'] = 'application/json';
				opt.body = JSON.stringify(body);
			}
		}
		return fetch(path, opt).then(function (res) {
			return res.text().then(function (t) {
				var j = null;
				try {
					j = t ? JSON.parse(t) : null;
				} catch (e) {
					j = null;
				}
				return { status: res.status, body: j,
					headers: res.headers };
			});
		});
	}
	function errText(r, fallback) {
		var e = r.body && r.body.error;
		if (!e)
			return fallback + ' (HTTP ' + r.status + ')';
		return e.message + ' (' + r.status + ' ' + e.error_code + ')';
	}

	// ---- views -------------------------------------------------------------
	function show(view) {
		['loading', 'login-view', 'invite-view', 'refused-view',
		    'overview-view'].forEach(
		    function (v) {
			$(v).hidden = v !== view;
		});
		var signedIn = user !== null;
		$('logout').hidden = !signedIn;
		$('who').hidden = !signedIn;
		if (signedIn)
			$('who').textContent = user.email + ' (' + user.role + ')';
	}
	function stopRefresh() {
		if (timer !== null)
			clearTimeout(timer);
		timer = null;
	}
	function toLogin(message) {
		stopRefresh();
		csrf = null;
		user = null;
		show('login-view');
		var e = $('login-error');
		e.hidden = !message;
		e.textContent = message || '';
		$('password').value = '';
		$('email').focus();
	}

	function setSession(b) {
		csrf = b.csrf_token || null;
		user = b.user || null;
	}

	// ---- formatting ----------------------------------------------------------
	function num(n) {
		return n === null || n === undefined ? '–' :
		    Number(n).toLocaleString('en-US');
	}
	function setVal(id, v, text) {
		var el = $(id);
		el.textContent = text !== undefined ? text : num(v);
		el.setAttribute('data-value', v === null || v === undefined ?
		    '' : String(v));
	}
	function secs(s) {
		if (s === null || s === undefined)
			return 'none';
		if (s < 120)
			return Math.floor(s) + ' s';
		if (s < 7200)
			return Math.floor(s / 60) + ' min';
		return Math.floor(s / 3600) + ' h';
	}
	function clear(el) {
		while (el.firstChild)
			el.removeChild(el.firstChild);
	}
	function table(el, heads, rows, empty) {
		clear(el);
		if (rows.length === 0) {
			var p = document.createElement('p');
			p.className = 'muted';
			p.textContent = empty;
			el.appendChild(p);
			return;
		}
		var t = document.createElement('table');
		var tr = document.createElement('tr');
		heads.forEach(function (h) {
			var th = document.createElement('th');
			th.scope = 'col';
			th.textContent = h;
			tr.appendChild(th);
		});
		var thead = document.createElement('thead');
		thead.appendChild(tr);
		t.appendChild(thead);
		var tb = document.createElement('tbody');
		rows.forEach(function (r) {
			var row = document.createElement('tr');
			r.forEach(function (c) {
				var td = document.createElement('td');
				if (typeof c === 'number') {
					td.className = 'num';
					td.textContent = num(c);
				} else
					td.textContent = c === null ? '' : String(c);
				row.appendChild(td);
			});
			tb.appendChild(row);
		});
		t.appendChild(tb);
		el.appendChild(t);
	}

	// ---- SVG charts ----------------------------------------------------------
	function svgEl(name, attrs, text) {
		var e = document.createElementNS(SVGNS, name);
		Object.keys(attrs || {}).forEach(function (k) {
			e.setAttribute(k, attrs[k]);
		});
		if (text !== undefined)
			e.textContent = text;
		return e;
	}
	// A chart container: an <svg role="img"> with its text alternative.
	function svgBox(id, w, h, label) {
		var el = $(id);
		clear(el);
		var s = svgEl('svg', { viewBox: '0 0 ' + w + ' ' + h, role: 'img',
			'aria-label': label });
		s.appendChild(svgEl('title', {}, label));
		el.appendChild(s);
		return s;
	}
	function chartBudget(b) {
		var spent = b.spent_micros, resv = b.reserved_micros;
		var cap = b.daily_micros;
		var label = cap === null ?
		    'LLM spend today ' + num(spent) + ' micros; no daily budget' :
		    'LLM spend today ' + num(spent) + ' of ' + num(cap) +
			' micros (' + num(resv) + ' held)';
		var s = svgBox('chart-budget', 400, 76, label);
		var W = 380, x0 = 10;
		var max = Math.max(cap || 0, spent + resv, 1);
		s.appendChild(svgEl('rect', { x: x0, y: 10, width: W, height: 24,
			'class': 'bar-track' }));
		var ws = W * Math.min(spent, max) / max;
		var wr = W * Math.min(resv, max - spent) / max;
		s.appendChild(svgEl('rect', { x: x0, y: 10, width: ws, height: 24,
			'class': cap !== null && spent > cap ? 'bar-over' :
			    'bar-spent' }));
		if (wr > 0)
			s.appendChild(svgEl('rect', { x: x0 + ws, y: 10, width: wr,
				height: 24, 'class': 'bar-reserved' }));
		s.appendChild(svgEl('text', { x: x0, y: 60 }, cap === null ?
		    num(spent) + ' µ spent · no budget set' :
		    num(spent) + ' µ spent of ' + num(cap) + ' µ (' +
			Math.round(100 * spent / Math.max(cap, 1)) + ' %)'));
	}
	function chartQueues(j) {
		var qs = j.queues || [];
		var h = 20 + 28 * Math.max(qs.length, 1);
		var s = svgBox('chart-queues', 400, h, qs.length === 0 ?
		    'No queued, running or dead jobs' :
		    qs.map(function (q) {
			return q.queue + ': ' + q.queued + ' queued, ' +
			    q.running + ' running, ' + q.dead + ' dead';
		    }).join('; '));
		if (qs.length === 0) {
			s.appendChild(svgEl('text', { x: 10, y: 30 },
			    'No queued, running or dead jobs.'));
			return;
		}
		var max = 1;
		qs.forEach(function (q) {
			max = Math.max(max, q.queued + q.running + q.dead);
		});
		var x0 = 150, W = 170;
		qs.forEach(function (q, i) {
			var y = 10 + 28 * i, x = x0;
			s.appendChild(svgEl('text', { x: 4, y: y + 15 },
			    q.queue.slice(0, 14)));
			['queued', 'running', 'dead'].forEach(function (k) {
				var w = W * q[k] / max;
				if (w > 0)
					s.appendChild(svgEl('rect', { x: x, y: y,
						width: w, height: 18,
						'class': 'bar-' + k }));
				x += w;
			});
			s.appendChild(svgEl('text', { x: x + 4, y: y + 15 },
			    q.queued + '/' + q.running + '/' + q.dead));
		});
	}
	function chartErrors(e) {
		if (!e || !e.per_hour) {
			var s0 = svgBox('chart-errors', 400, 40,
			    'Error tracking is not available');
			s0.appendChild(svgEl('text', { x: 10, y: 24 },
			    'Error tracking is not available.'));
			return;
		}
		var ph = e.per_hour, total = 0, max = 1;
		ph.forEach(function (p) {
			total += p.count;
			max = Math.max(max, p.count);
		});
		var s = svgBox('chart-errors', 400, 124, total +
		    ' errors in the last 24 hours, at most ' + max + ' in one hour');
		var W = 380 / Math.max(ph.length, 1);
		ph.forEach(function (p, i) {
			var hh = 80 * p.count / max;
			s.appendChild(svgEl('rect', { x: 10 + i * W, y: 90 - hh,
				width: Math.max(W - 2, 1), height: hh,
				'class': 'bar-errors' }, undefined));
		});
		s.appendChild(svgEl('line', { x1: 10, y1: 90, x2: 390, y2: 90,
			'class': 'axis' }));
		s.appendChild(svgEl('text', { x: 10, y: 114 }, '24 h ago'));
		s.appendChild(svgEl('text', { x: 355, y: 114 }, 'now'));
	}

	// ---- the overview ----------------------------------------------------------
	function render(o) {
		var u = o.usage_today, b = o.budget, l = o.llm_leases;
		$('day').textContent = u.day;
		$('updated').textContent = new Date().toLocaleTimeString('en-GB');
		setVal('v-chat-turns', u.chat_turns);
		setVal('v-tokens', u.tokens);
		setVal('v-credits-granted', u.credits.granted);
		setVal('v-credits-spent', u.credits.spent);
		setVal('v-spent', b.spent_micros);
		setVal('v-budget', b.daily_micros,
		    b.daily_micros === null ? 'none' : undefined);
		if (l) {
			setVal('v-leases-org', l.org.in_use,
			    l.org.in_use + ' / ' + l.org.cap);
			setVal('v-leases-global', l.global.in_use,
			    l.global.in_use + ' / ' + l.global.cap);
		} else {
			setVal('v-leases-org', null, 'unavailable');
			setVal('v-leases-global', null, 'unavailable');
		}
		setVal('v-oldest-job', o.jobs.oldest_runnable_s,
		    secs(o.jobs.oldest_runnable_s));
		setVal('v-stuck', o.stuck_campaigns.count);
		$('v-stuck').className = o.stuck_campaigns.count > 0 ? 'bad' : '';
		var wf = o.webhook_failures;
		setVal('v-webhook-failures', wf ? wf.total : null,
		    wf ? undefined : 'unavailable');
		$('v-webhook-failures').className = wf && wf.total > 0 ? 'bad' : '';
		var er = o.errors;
		setVal('v-error-groups', er ? er.groups.length : null,
		    er ? undefined : 'n/a');

		chartBudget(b);
		chartQueues(o.jobs);
		chartErrors(er);

		table($('stuck-list'), ['campaign', 'name', 'no progress since'],
		    o.stuck_campaigns.campaigns.map(function (c) {
			return [c.id, c.name, c.since];
		    }), 'None.');
		table($('webhook-list'), ['provider', 'reason', 'count'],
		    wf ? wf.by.map(function (x) {
			return [x.provider, x.reason, x.count];
		    }) : [], wf ? 'None.' : 'Unavailable (Redis did not answer).');
		table($('error-list'), ['kind', 'code', 'where', 'count',
		    'last seen'], er ? er.groups.map(function (g) {
			return [g.kind, g.code, g.site, g.count, g.last_seen];
		    }) : [], er ? 'None.' : 'Error tracking is not available.');
		var un = o.unavailable || [];
		$('overview-error').hidden = un.length === 0;
		$('overview-error').textContent = un.length === 0 ? '' :
		    'Not available now: ' + un.join(', ') + '.';
	}

	function load() {
		stopRefresh();
		return api('GET', '/api/v1/admin/overview').then(function (r) {
			if (r.status === 200) {
				render(r.body);
				show('overview-view');
			} else if (r.status === 401) {
				toLogin('Your session has ended. Please log in again.');
				return;
			} else if (r.status === 403) {
				$('refused-msg').textContent = 'The server refused the ' +
				    'overview: ' + errText(r, 'Forbidden');
				show('refused-view');
				return;
			} else {
				$('overview-error').hidden = false;
				$('overview-error').textContent = 'Could not refresh: ' +
				    errText(r, 'error');
			}
			timer = setTimeout(load, REFRESH_MS);
		}, function () {
			$('overview-error').hidden = false;
			$('overview-error').textContent =
			    'Could not reach the server; retrying.';
			timer = setTimeout(load, REFRESH_MS);
		});
	}

	function onLogin(ev) {
		ev.preventDefault();
		var email = $('email').value.trim();
		var pw = $('password').value;
		if (!email || !pw) {
			$('login-error').hidden = false;
			$('login-error').textContent = 'Enter your e-mail and password.';
			return;
		}
		$('login-submit').disabled = true;
		api('POST', '/api/v1/auth/login', { email: email, password: pw })
		    .then(function (r) {
			$('login-submit').disabled = false;
			$('password').value = '';
			if (r.status === 200 && r.body) {
				setSession(r.body);
				$('login-error').hidden = true;
				return load();
			}
			var msg;
			if (r.status === 401)
				msg = 'Wrong e-mail or password.';
			else if (r.status === 429)
				msg = 'Too many attempts. Try again in ' +
				    (r.headers.get('Retry-After') || 'a few') +
				    ' seconds.';
			else
				msg = 'Could not log in: ' + errText(r, 'error');
			$('login-error').hidden = false;
			$('login-error').textContent = msg;
		}, function () {
			$('login-submit').disabled = false;
			$('login-error').hidden = false;
			$('login-error').textContent = 'Could not reach the server.';
		});
	}

	// An invite link (bulwarkctl user add without a password):
	// /console/#invite=<token>. The token leaves the address bar at once
	// (history.replaceState) and is sent once, with the new password.
	var inviteToken = null;
	function onInvite(ev) {
		ev.preventDefault();
		var pw = $('invite-password').value;
		var err = $('invite-error');
		if (pw.length < 10) {
			err.hidden = false;
			err.textContent = 'The password needs at least 10 characters.';
			return;
		}
		$('invite-submit').disabled = true;
		api('POST', '/api/v1/auth/invite/accept',
		    { token: inviteToken, password: pw }).then(function (r) {
			$('invite-submit').disabled = false;
			$('invite-password').value = '';
			if (r.status === 200) {
				inviteToken = null;
				toLogin('');
				$('login-error').hidden = false;
				$('login-error').textContent =
				    'Your password is set. Log in with it.';
				return;
			}
			err.hidden = false;
			err.textContent = r.status === 410 ?
			    'This invite link is used up or expired. Ask an owner ' +
				'for a new one.' :
			    'Could not set the password: ' + errText(r, 'error');
		}, function () {
			$('invite-submit').disabled = false;
			err.hidden = false;
			err.textContent = 'Could not reach the server.';
		});
	}

	// 1 when the address is an invite link: the set-password form.
	function checkInvite() {
		var m = /^#invite=([A-Za-z0-9_-]{1,64})$/.exec(location.hash);
		if (!m)
			return false;
		inviteToken = m[1];
		history.replaceState(null, '', location.pathname);
		stopRefresh();
		show('invite-view');
		$('invite-error').hidden = true;
		$('invite-password').focus();
		return true;
	}

	function onLogout() {
		api('POST', '/api/v1/auth/logout').then(function () {
			toLogin('You are logged out.');
		}, function () {
			toLogin('You are logged out.');
		});
	}

	function start() {
		$('login-form').addEventListener('submit', onLogin);
		$('invite-form').addEventListener('submit', onInvite);
		$('logout').addEventListener('click', onLogout);
		// Also when the link is opened in a tab already on the page.
		window.addEventListener('hashchange', checkInvite);
		if (checkInvite())
			return;
		api('GET', '/api/v1/auth/session').then(function (r) {
			if (r.status === 200 && r.body) {
				setSession(r.body);
				load();
			} else
				toLogin('');
		}, function () {
			toLogin('Could not reach the server.');
		});
	}

	if (document.readyState === 'loading')
		document.addEventListener('DOMContentLoaded', start);
	else
		start();
})();
