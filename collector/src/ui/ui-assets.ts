import { loadPlayerAssets, type PlayerAssets, type StaticAsset, staticAsset } from './player-assets.js';
import { TERMINAL_PLAYER_SCRIPT } from './terminal-player-script.js';
import { UI_STYLESHEET } from './ui-stylesheet.js';

/** Everything under /ui/assets/, by file name. */
export type UiAssets = ReadonlyMap<string, StaticAsset>;

export function loadUiAssets(player: PlayerAssets = loadPlayerAssets()): UiAssets {
  return new Map([
    ['ui.css', staticAsset(UI_STYLESHEET, 'text/css; charset=utf-8')],
    ['terminal.js', staticAsset(TERMINAL_PLAYER_SCRIPT, 'text/javascript; charset=utf-8')],
    ['asciinema-player.min.js', player.script],
    ['asciinema-player.css', player.stylesheet],
  ]);
}

/** The URL of an asset, with its content hash so that caches never serve a stale one. */
export function assetUrl(assets: UiAssets, name: string): string {
  const asset = assets.get(name);
  if (!asset) throw new Error(`no UI asset ${name}`);
  return `/ui/assets/${name}?v=${asset.version}`;
}
