// Drives the sandbox's /v1/iamport.js in Node with a tiny fake DOM (no browser needed) and prints
// one JSON object with what the page would have seen. Usage: node drive_sdk.js <sdk.js path> <sandbox url>
"use strict";
const fs = require("fs");
const [sdkPath, base] = process.argv.slice(2);

function makeElement(tag) {
  return {
    tag, attrs: {}, children: [], listeners: {}, textContent: "", value: "", disabled: false, parentNode: null,
    setAttribute(key, value) { this.attrs[key] = value; if (key === "id" || key === "name") this[key] = value; },
    appendChild(child) { child.parentNode = this; this.children.push(child); return child; },
    removeChild(child) { this.children = this.children.filter((c) => c !== child); child.parentNode = null; },
    addEventListener(type, fn) { this.listeners[type] = fn; },
    focus() {},
  };
}
const walk = (el, out = []) => { out.push(el); el.children.forEach((c) => walk(c, out)); return out; };
const body = makeElement("body");
let navigatedTo = null;
global.document = {
  body,
  currentScript: { src: base + "/v1/iamport.js" },
  createElement: makeElement,
  getElementById: (id) => walk(body).find((e) => e.id === id) || null,
  addEventListener() {},
};
global.window = { document };
Object.defineProperty(global.window, "location", {
  value: { get href() { return "http://app.localhost/checkout"; }, set href(v) { navigatedTo = v; } },
});
eval(fs.readFileSync(sdkPath, "utf8"));

const IMP = window.IMP;
const input = (name) => walk(body).find((e) => e.tag === "input" && e.name === name);
const label = (name) => walk(body).find((e) => e.tag === "label" && e.attrs["for"] === "imp-sandbox-" + name);
const button = (text) => walk(body).find((e) => e.tag === "button" && e.textContent === text);
const submit = () => button("결제하기").parentNode.parentNode.listeners.submit({ preventDefault() {} });
const fill = (values) => Object.entries(values).forEach(([name, value]) => { input(name).value = value; });

(async () => {
  const result = {};
  IMP.init("imp00000000");
  result.paid = await new Promise((resolve) => {
    IMP.request_pay({ pay_method: "card", merchant_uid: "js-1", name: "등록", amount: 0, customer_uid: "c_js" }, resolve);
    result.labels = ["card_number", "expiry", "birth", "pwd_2digit"].map((n) => label(n).textContent);
    result.overlayOpen = document.getElementById("imp-sandbox-overlay") !== null;
    fill({ card_number: "4242 4242 4242 4242", expiry: "12/99", birth: "900101", pwd_2digit: "12" });
    submit();
  });
  result.overlayClosed = document.getElementById("imp-sandbox-overlay") === null;
  result.cancelled = await new Promise((resolve) => {
    IMP.request_pay({ merchant_uid: "js-2", amount: 0, customer_uid: "c_js2" }, resolve);
    button("취소").listeners.click();
  });
  IMP.request_pay({ merchant_uid: "js-3", amount: 0, customer_uid: "c_js3", m_redirect_url: "/done" });
  fill({ card_number: "4000-0000-0000-0002", expiry: "2099-12" });
  submit();
  for (let i = 0; i < 100 && navigatedTo === null; i++) { await new Promise((r) => setTimeout(r, 20)); }
  result.redirect = navigatedTo;
  process.stdout.write(JSON.stringify(result));
})();
