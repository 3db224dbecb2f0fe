using System.Numerics;

namespace MLNet.Align;

/// <summary>
/// "Finite or fail": a NaN compares false with everything, so a NaN similarity ranks as a hit and a NaN embedding
/// gives 100% Recall@1; evaluators, the store reader and the encoders therefore refuse non-finite values with an error
/// naming where the first one is. The scan is vectorised (x - x is 0 exactly for finite x), about one pass over memory.
/// </summary>
public static class FiniteCheck
{
    /// <summary>Index of the first NaN or infinite value, or -1 when all are finite.</summary>
    public static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && values.Length >= Vector<float>.Count)
        {
            for (; i <= values.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = new Vector<float>(values[i..]);
                if (!Vector.EqualsAll(v - v, Vector<float>.Zero)) break;
            }
        }
        for (; i < values.Length; i++) if (!float.IsFinite(values[i])) return i;
        return -1;
    }

    /// <summary>"NaN", "+Infinity" or "-Infinity".</summary>
    public static string Name(float value) => float.IsNaN(value) ? "NaN" : value > 0 ? "+Infinity" : "-Infinity";

    /// <summary>Throws when <paramref name="values"/> (row-major, <paramref name="columns"/> wide) holds a non-finite value.</summary>
    /// <param name="values">The values.</param>
    /// <param name="columns">Row width (1 for a vector).</param>
    /// <param name="what">What the values are, for the message (e.g. "image embeddings").</param>
    /// <param name="hint">Likely cause, appended to the message; may be empty.</param>
    /// <exception cref="InvalidDataException">The first non-finite value, with its row and column.</exception>
    public static void Require(ReadOnlySpan<float> values, int columns, string what, string hint = "")
    {
        int at = IndexOfNonFinite(values);
        if (at < 0) return;
        int cols = Math.Max(1, columns);
        int row = at / cols, col = at % cols;
        throw new InvalidDataException($"{what}: row {row}, column {col} is {Name(values[at])}{(hint.Length > 0 ? "; " + hint : "")}.");
    }

    /// <summary>Throws when <paramref name="m"/> holds a non-finite value (see <see cref="Require(ReadOnlySpan{float}, int, string, string)"/>).</summary>
    /// <exception cref="InvalidDataException">The first non-finite value, with its row and column.</exception>
    public static void Require(EmbeddingMatrix m, string what, string hint = "")
    {
        ArgumentNullException.ThrowIfNull(m);
        Require(m.Data, m.Columns, what, hint);
    }
}
