/**
 * Lua: `error_text(e)`, the text of an error a script caught with `pcall`. Redis raises a command's error as a
 * string in 7.0, as a table with `err` since; a script's own `error(...)` passes either on.
 */
export const ERROR_TEXT_LUA = `
local function error_text(e)
  return type(e) == 'table' and tostring(e.err) or tostring(e)
end
`;
