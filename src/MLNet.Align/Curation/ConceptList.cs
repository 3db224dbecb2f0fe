namespace MLNet.Align.Curation;

/// <summary>A concept to cover: a class name, optionally a gloss (a one-line definition, e.g. from WordNet) and an id.</summary>
/// <param name="Name">The class name used in prompts ("tench").</param>
/// <param name="Gloss">Optional definition ("freshwater dace-like game fish of Europe and western Asia ...").</param>
/// <param name="Id">Optional identifier (an ImageNet wnid such as "n01440764").</param>
public sealed record Concept(string Name, string? Gloss = null, string? Id = null);

/// <summary>
/// Reads concept lists (stage 2). Two layouts, UTF-8: a TSV whose first line is a header with a <c>name</c> column
/// and optional <c>gloss</c> and <c>id</c> columns (other columns are ignored), or a plain list with one concept per
/// line, <c>name</c> or <c>name&lt;TAB&gt;gloss</c>. Blank lines and lines starting with '#' are skipped.
/// </summary>
public static class ConceptList
{
    /// <summary>Reads a concept list.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">No concepts, an empty name, a wrong field count or a repeated name (the
    /// message names the file and line).</exception>
    public static IReadOnlyList<Concept> Read(string path)
    {
        string full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"Concept list not found: {full}", full);
        var lines = File.ReadAllLines(full);
        var result = new List<Concept>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        int nameCol = 0, glossCol = 1, idCol = -1, fields = -1;
        bool headerSeen = false;
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (i == 0) line = line.TrimStart('\uFEFF');
            if (line.Trim().Length == 0 || line.TrimStart().StartsWith('#')) continue;
            var f = line.Split('\t');
            if (!headerSeen)
            {
                headerSeen = true;
                int n = Array.IndexOf(f, "name");
                if (n >= 0)
                {
                    nameCol = n; glossCol = Array.IndexOf(f, "gloss"); idCol = Array.IndexOf(f, "id"); fields = f.Length;
                    continue;
                }
            }
            if (fields > 0 && f.Length != fields)
                throw new InvalidDataException($"{full}, line {i + 1}: expected {fields} tab-separated fields (as the header), found {f.Length}.");
            if (fields < 0 && f.Length > 2)
                throw new InvalidDataException($"{full}, line {i + 1}: expected 'name' or 'name<TAB>gloss', found {f.Length} fields.");
            string name = f[nameCol].Trim();
            if (name.Length == 0) throw new InvalidDataException($"{full}, line {i + 1}, column 'name': the concept name is empty.");
            if (seen.TryGetValue(name, out int first))
                throw new InvalidDataException($"{full}, line {i + 1}: concept '{name}' repeats line {first} (concept names must be unique).");
            seen[name] = i + 1;
            string? gloss = glossCol >= 0 && glossCol < f.Length && f[glossCol].Trim().Length > 0 ? f[glossCol].Trim() : null;
            string? id = idCol >= 0 && f[idCol].Trim().Length > 0 ? f[idCol].Trim() : null;
            result.Add(new Concept(name, gloss, id));
        }
        if (result.Count == 0) throw new InvalidDataException($"{full}: no concepts (one per line, or a TSV with a 'name' column).");
        return result;
    }
}
