// Navigation state shared by the router and the pages (kept apart from app.js so pages do
// not import the router). Each navigation gets a number; a page whose number is no longer
// current drops what its requests bring back, so a later page or filter always wins.
let generation = 0;
let router = null;

export function setRouter(fn) { router = fn; }
export function nextGeneration() { generation += 1; return generation; }
export function current(gen) { return gen === generation; }

export function go(href, replace) {
  if (replace) { history.replaceState(null, "", href); } else { history.pushState(null, "", href); }
  window.scrollTo(0, 0);
  return router();
}

// A page's own state (its filters) written into the address, without a new navigation:
// the address stays one a user can bookmark and share.
export function rewrite(href) { history.replaceState(null, "", href); }

// Marks whether what is shown answers the latest request (tests wait for it).
export function settled(yes) { document.body.dataset.settled = yes ? "1" : "0"; }
