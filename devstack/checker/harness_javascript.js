// Runs inside the sandbox (node --experimental-permission, reading /task only); never loaded by Kaizen.
//
// Parses /task/answer.js, runs it in a fresh V8 context that has no require, process, module system,
// timers or network API, and no eval from strings, then calls the function that /task/spec.json names
// on each input and writes one result line. Reaching for what the context lacks (require, process,
// fetch, a dynamic import) is recorded where the answer cannot clear it, and ends the run with exit 86:
// the sandbox gives such an attempt nothing to reach, and this makes the attempt itself a failure.
"use strict";
const fs = require("fs");
const vm = require("vm");

const VIOLATION = 86;
const MARK = "KAIZEN-RESULT ";
const spec = JSON.parse(fs.readFileSync("/task/spec.json", "utf8"));
const source = fs.readFileSync("/task/answer.js", "utf8");
let reached = "";

function emit(result) {
  process.stdout.write(MARK + JSON.stringify(result) + "\n", () => process.exit(0));
}

function refuse(what) {
  process.stderr.write(`sandbox: ${what} refused\n`, () => process.exit(VIOLATION));
}

function main() {
  let script;
  try {
    script = new vm.Script(source, {
      filename: "answer.js",
      importModuleDynamically: (name) => {
        reached = reached || `import(${String(name).slice(0, 80)})`;
        throw new Error("modules are not available in the sandbox");
      },
    });
  } catch (error) {
    return emit({ compiled: false, error: String(error).slice(0, 300) });
  }
  const context = vm.createContext(Object.create(null), {
    codeGeneration: { strings: false, wasm: false },
    microtaskMode: "afterEvaluate", // promise jobs run inside each call's timeout, not after it
  });
  // Traps made inside the context: the answer sees only its own realm's functions, never the host's.
  vm.runInContext(
    `(() => {
      let reached = "";
      for (const name of ["require", "process", "module", "exports", "fetch", "XMLHttpRequest", "WebSocket"]) {
        Object.defineProperty(globalThis, name, {
          get() { reached = reached || name; throw new ReferenceError(name + " is not available"); },
          configurable: false,
        });
      }
      Object.defineProperty(globalThis, "__kaizenReached", { value: () => reached, configurable: false });
    })();`,
    context,
  );
  const outputs = [];
  let defined = false;
  try {
    script.runInContext(context, { timeout: 1000 });
    defined = vm.runInContext(`typeof ${spec.name} === "function"`, context, { timeout: 1000 });
    for (const value of defined ? spec.inputs : []) {
      try {
        const call = `JSON.stringify((${spec.name})(${JSON.stringify(value)}))`;
        outputs.push(String(vm.runInContext(call, context, { timeout: 1000 })).slice(0, 1000));
      } catch (error) {
        outputs.push(`<${error && error.name ? String(error.name).slice(0, 40) : "error"}>`);
      }
    }
  } catch (error) {
    defined = false;
  }
  reached = reached || String(vm.runInContext("__kaizenReached()", context, { timeout: 1000 }));
  if (reached) return refuse(reached);
  return emit({ compiled: true, defined, outputs });
}

main();
