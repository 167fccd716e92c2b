-- Argo CD health check for Kaizen's four kinds: LearningPolicy, TrainingRun, ShadowModel, Experiment.
-- Register this one script under resource.customizations.health.kaizen.dev_<Kind> for each kind
-- (docs/argocd.md shows how). It reads only what the operator writes to status:
--   Progressing  no status yet; status.observedGeneration (or the Ready condition's) behind
--                metadata.generation, i.e. the operator has not acted on the latest spec; Ready Unknown.
--   Suspended    an Experiment with spec.paused: weights and decisions frozen.
--   Degraded     Ready False (the message carries its reason); a ShadowModel that was rolled back.
--   Healthy      Ready True; a retired ShadowModel (replaced by a better one, nothing to fix).
local hs = {}

local function find_condition(conditions, wanted)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == wanted then
      return condition
    end
  end
  return nil
end

local function describe(condition)
  local text = condition.reason or ""
  if condition.message ~= nil and condition.message ~= "" then
    if text ~= "" then
      text = text .. ": "
    end
    text = text .. condition.message
  end
  return text
end

local function with_reason(prefix, reason)
  if reason == nil or reason == "" then
    return prefix
  end
  return prefix .. ": " .. reason
end

local generation = obj.metadata.generation
local status = obj.status

if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Kaizen operator to act on this " .. obj.kind
  return hs
end

local observed = status.observedGeneration or 0
if generation ~= nil and observed ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the Kaizen operator to observe generation " .. generation .. " (it has acted on " .. observed .. ")"
  return hs
end

if obj.kind == "ShadowModel" then
  local rolled_back = find_condition(status.conditions, "RolledBack")
  if status.role == "RolledBack" or (rolled_back ~= nil and rolled_back.status == "True") then
    local reason = status.roleReason
    if (reason == nil or reason == "") and rolled_back ~= nil then
      reason = describe(rolled_back)
    end
    hs.status = "Degraded"
    hs.message = with_reason("Rolled back", reason)
    return hs
  end
  if status.role == "Retired" then
    hs.status = "Healthy"
    hs.message = with_reason("Retired", status.roleReason)
    return hs
  end
end

if obj.kind == "Experiment" and obj.spec ~= nil and obj.spec.paused == true then
  hs.status = "Suspended"
  hs.message = "Paused: traffic weights and decisions are frozen"
  return hs
end

local ready = find_condition(status.conditions, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
local ready_generation = ready.observedGeneration or 0
if generation ~= nil and ready_generation > 0 and ready_generation < generation then
  hs.status = "Progressing"
  hs.message = "Ready describes generation " .. ready_generation .. ", not the latest " .. generation
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = describe(ready)
return hs
