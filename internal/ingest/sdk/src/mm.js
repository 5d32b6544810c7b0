/*
 * Copyright 2026 Millimetric, Inc. Licensed under the Apache License, Version 2.0.
 *
 * The Millimetric SDK: the script a customer's page loads from its tenant's
 * ingest host (<script defer src="https://<tenant host>/js/mm.js">). It sends
 * pageviews and custom events to <the script's origin>/api/event, as a
 * text/plain JSON body, so the browser sends no CORS preflight.
 *
 * What it sends and what it keeps is what the privacy policy (§2) says:
 * - one anonymous id, 16 random bytes made here, kept in localStorage under
 *   "mm_aid" (never a cookie) and sent only to the endpoint;
 * - the page URL, the referrer, the document title, the site's domain, and
 *   the props a customer passes to mm() itself. Link clicks send the link's
 *   origin and path only: a query string can carry personal data.
 * Nothing is sent when localStorage.mm_ignore is "true" (the visitor's
 * opt-out), nor, in the build made with MM_GPC=true, when the browser sends
 * Global Privacy Control; then no mm_aid is made either.
 *
 * MM_GPC is not a variable: esbuild replaces it with true or false
 * (--define, internal/ingest/sdk/builds.txt) and drops the dead branch.
 *
 * Built by `make sdk` into internal/ingest/sdk/dist; sdk_test.go checks that
 * the committed builds are the bytes esbuild makes from this file.
 */
/* global MM_GPC */

const script = document.currentScript;

// Without its own <script> element the SDK cannot know its endpoint (a
// module or an eval'd copy), so it does nothing rather than guess.
if (script) {
  const attr = (name) => script.getAttribute(name);
  const has = (name) => script.hasAttribute(name);
  const endpoint = attr('data-api') || new URL(script.src).origin + '/api/event';
  const domain = attr('data-domain') || location.hostname;
  const hashRouting = has('data-hash');

  // storage runs f on localStorage, or returns undefined when localStorage
  // is unavailable: disabled, or a sandboxed iframe, where merely reading
  // window.localStorage throws.
  const storage = (f) => {
    try {
      return f(localStorage);
    } catch (e) {}
  };

  // anonymousID returns the visitor's mm_aid, making it on first use: 16
  // random bytes as 22 characters of base64url without padding. A stored
  // value of another shape (edited, or a bug's) is replaced.
  const anonymousID = () =>
    storage((s) => {
      let id = s.getItem('mm_aid');
      if (!/^[\w-]{22}$/.test(id)) {
        id = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))))
          .slice(0, 22)
          .replace(/\+/g, '-')
          .replace(/\//g, '_');
        s.setItem('mm_aid', id);
      }
      return id;
    });

  // send is window.mm: it sends one event, name and options as documented
  // in the README. The callback runs once the event is handed to the
  // browser, or skipped.
  const send = (name, options) => {
    options = options || {};
    if (
      !(MM_GPC && navigator.globalPrivacyControl === true) &&
      storage((s) => s.getItem('mm_ignore')) !== 'true'
    ) {
      const event = { n: name, u: location.href, d: domain, r: document.referrer || null };
      if (document.title) event.t = document.title;
      const id = anonymousID();
      if (id) event.aid = id;
      if (options.props) event.p = options.props;
      if (hashRouting) event.h = 1;
      const body = JSON.stringify(event);
      // sendBeacon survives the page's unload, so a link click needs no
      // delay; it returns false when the browser refuses to queue.
      if (!(navigator.sendBeacon && navigator.sendBeacon(endpoint, body))) {
        fetch(endpoint, {
          method: 'POST',
          body,
          keepalive: true,
          headers: { 'Content-Type': 'text/plain' },
          credentials: 'omit',
        }).catch(() => {});
      }
    }
    if (options.callback) options.callback();
  };

  // A pageview is sent when the page (the path, and the fragment with
  // data-hash) differs from the last one sent: pushState to the same path
  // is no new page.
  let last;
  const pageview = () => {
    const page = location.pathname + (hashRouting ? location.hash : '');
    if (page !== last) {
      last = page;
      send('pageview');
    }
  };

  const push = history.pushState;
  if (push) {
    history.pushState = function () {
      push.apply(this, arguments);
      pageview();
    };
    addEventListener('popstate', pageview);
  }
  if (hashRouting) addEventListener('hashchange', pageview);

  // A prerendered page may never be seen: count it when it is shown.
  if (document.visibilityState === 'prerender') {
    const shown = () => {
      if (document.visibilityState === 'visible') {
        document.removeEventListener('visibilitychange', shown);
        pageview();
      }
    };
    document.addEventListener('visibilitychange', shown);
  } else {
    pageview();
  }

  // Calls made before the script loaded, through the stub
  // window.mm = window.mm || function () { (window.mm.q = window.mm.q || []).push(arguments) }.
  // The length is read on every turn: a replayed callback may queue more.
  const queue = (window.mm && window.mm.q) || [];
  for (let i = 0; i < queue.length; i++) send(...queue[i]);
  window.mm = send;

  const downloads = has('data-file-downloads');
  const outbound = has('data-outbound-links');
  if (downloads || outbound) {
    const click = (e) => {
      // auxclick is any button but the primary; only the middle one opens
      // a link.
      if (e.type === 'auxclick' && e.button !== 1) return;
      const link = e.target.closest && e.target.closest('a');
      // http(s) only: not mailto: or tel:, and not an SVG <a>, which has no
      // protocol property.
      if (!link || !/^https?:$/.test(link.protocol)) return;
      const options = { props: { url: link.origin + link.pathname } };
      if (
        downloads &&
        /\.(pdf|xlsx|docx|txt|rtf|csv|exe|key|pps|ppt|pptx|7z|pkg|rar|gz|zip|avi|mov|mp4|mpeg|wmv|midi|mp3|wav|wma|dmg)$/i.test(
          link.pathname,
        )
      ) {
        send('File Download', options);
      } else if (outbound && link.host !== location.host) {
        send('Outbound Link: Click', options);
      }
    };
    document.addEventListener('click', click);
    document.addEventListener('auxclick', click);
  }
}
