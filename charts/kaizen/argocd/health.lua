-- Argo CD health check for Kaizen's four kinds: LearningPolicy, TrainingRun, ShadowModel, Experiment.
-- Register this one script under resource.customizations.health.kaizen.dev_<Kind> for each kind
-- (docs/argocd.md shows how). It reads only what the operator writes to status:
--   Progressing  no status yet; status.observedGeneration (or the Ready condition's) behind
--                metadata.generation, i.e. the operator has not acted on the latest spec; Ready Unknown;
--                a ShadowModel given its final role but not yet taken out of service; an Experiment
--                rolling its promoted model back for drift.
--   Suspended    an Experiment with spec.paused: weights and decisions frozen.
--   Degraded     Ready False (the message carries its reason).
--   Healthy      Ready True; a rolled-back or retired ShadowModel once out of service, an Experiment
--                whose drift watch rolled its model back: history, with nothing for a person to fix
--                (the rollback itself was the fix; the Warning Event is the moment to be told).
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

local out_of_service = { RolledBack = "Rolled back", Retired = "Retired" }

if obj.kind == "ShadowModel" and out_of_service[status.role] ~= nil then
  local said = out_of_service[status.role]
  local ready = find_condition(status.conditions, "Ready")
  if ready == nil or ready.reason ~= status.role then
    hs.status = "Progressing"
    hs.message = with_reason(said .. ", being taken out of service", status.roleReason)
    return hs
  end
  hs.status = "Healthy"
  hs.message = with_reason(said, status.roleReason)
  return hs
end

if obj.kind == "Experiment" then
  local drift = find_condition(status.conditions, "Drift")
  if drift ~= nil and drift.reason == "Regressed" then
    hs.status = "Healthy"
    hs.message = describe(drift)
    return hs
  end
  if drift ~= nil and drift.reason == "RollingBack" then
    hs.status = "Progressing"
    hs.message = describe(drift)
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
