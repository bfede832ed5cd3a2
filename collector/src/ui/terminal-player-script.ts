// Starts the asciinema player on the terminal replay page. An external script (served as
// /ui/assets/terminal.js) because the CSP forbids inline script; the page passes the recording's
// URL in a data attribute, which the browser hands over as text, never as code.
export const TERMINAL_PLAYER_SCRIPT = `'use strict';
(function () {
  var el = document.getElementById('player');
  if (!el || !window.AsciinemaPlayer) return;
  window.AsciinemaPlayer.create(el.dataset.cast, el, {
    fit: 'width',
    idleTimeLimit: 2,
    preload: true,
    controls: true,
    // The server passes the time of the last frame: the poster shows the session's final screen.
    poster: el.dataset.poster || undefined
  });
})();
`;
