using System.Numerics;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The token column of the quantized language-model transforms: a vector of keys (<c>TokenizeIntoWords</c> then
/// <c>MapValueToKey</c>, or <c>TokenizeIntoCharactersAsKeys</c>). Checks its type, reads its key names and reads a
/// row's keys with a reused buffer, whatever the key's raw type.
/// </summary>
internal static class TokenKeyColumn
{
    public const string ExpectedType = "Vector<Key> (a vector of keys, e.g. from TokenizeIntoWords then MapValueToKey, or TokenizeIntoCharactersAsKeys)";

    /// <summary>The column, checked to be a vector of keys of a supported raw type; ML.NET schema errors otherwise.</summary>
    public static DataViewSchema.Column Check(IExceptionContext ectx, DataViewSchema schema, string name, ulong? expectedKeyCount = null)
    {
        var column = schema.GetColumnOrNull(name) ?? throw ectx.ExceptSchemaMismatch(nameof(schema), "input", name);
        if (column.Type is not VectorDataViewType vector || vector.ItemType is not KeyDataViewType key || !IsSupportedRawType(key.RawType))
            throw ectx.ExceptSchemaMismatch(nameof(schema), "input", name, ExpectedType, column.Type.ToString());
        if (expectedKeyCount is ulong count && key.Count != count)
            throw ectx.ExceptSchemaMismatch(nameof(schema), "input", name, $"Vector<Key> with {count} key values (as in training)", $"{column.Type} with {key.Count} key values");
        return column;
    }

    /// <summary>The estimator-side check on a <see cref="SchemaShape"/>.</summary>
    public static void Check(IExceptionContext ectx, SchemaShape schema, string name)
    {
        if (!schema.TryFindColumn(name, out var column)) throw ectx.ExceptSchemaMismatch(nameof(schema), "input", name);
        bool isVector = column.Kind is SchemaShape.Column.VectorKind.VariableVector or SchemaShape.Column.VectorKind.Vector;
        // SchemaShape describes a key column by IsKey and the key's raw type as ItemType.
        if (!isVector || !column.IsKey || column.ItemType is not PrimitiveDataViewType raw || !IsSupportedRawType(raw.RawType))
            throw ectx.ExceptSchemaMismatch(nameof(schema), "input", name, ExpectedType, column.GetTypeString());
    }

    public static ulong KeyCount(DataViewSchema.Column column) => ((KeyDataViewType)((VectorDataViewType)column.Type).ItemType).Count;

    /// <summary>Names of keys 1..count from the column's KeyValues annotation, or "k1".."kN" without one (null = look up lazily).</summary>
    public static Func<ulong, string> KeyNames(DataViewSchema.Column column)
    {
        var annotation = column.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues);
        if (annotation is { Type: VectorDataViewType { ItemType: TextDataViewType } })
        {
            var values = default(VBuffer<ReadOnlyMemory<char>>);
            column.Annotations.GetValue(AnnotationUtils.Kinds.KeyValues, ref values);
            var dense = new ReadOnlyMemory<char>[values.Length];
            values.CopyTo(dense);
            return key => key - 1 < (ulong)dense.Length && !dense[key - 1].IsEmpty ? dense[key - 1].ToString() : "k" + key;
        }
        return key => "k" + key;
    }

    private static bool IsSupportedRawType(Type t) => t == typeof(uint) || t == typeof(ushort) || t == typeof(byte) || t == typeof(ulong);

    /// <summary>A reader of one row's keys, for one cursor (not thread-safe; one per cursor).</summary>
    public static KeyReader CreateReader(DataViewRow row, DataViewSchema.Column column)
    {
        var raw = ((KeyDataViewType)((VectorDataViewType)column.Type).ItemType).RawType;
        if (raw == typeof(uint)) return new KeyReader<uint>(row, column);
        if (raw == typeof(ushort)) return new KeyReader<ushort>(row, column);
        if (raw == typeof(byte)) return new KeyReader<byte>(row, column);
        return new KeyReader<ulong>(row, column);
    }
}

/// <summary>Reads a row's keys as <see cref="ulong"/> (0 = missing) into a reused buffer.</summary>
internal abstract class KeyReader
{
    /// <summary>The current row's keys; valid until the next call.</summary>
    public abstract ReadOnlySpan<ulong> Read();
}

internal sealed class KeyReader<T> : KeyReader where T : unmanaged, IBinaryInteger<T>
{
    private readonly ValueGetter<VBuffer<T>> _getter;
    private VBuffer<T> _buffer;
    private T[] _dense = [];
    private ulong[] _keys = [];

    public KeyReader(DataViewRow row, DataViewSchema.Column column) => _getter = row.GetGetter<VBuffer<T>>(column);

    public override ReadOnlySpan<ulong> Read()
    {
        _getter(ref _buffer);
        int n = _buffer.Length;
        if (_keys.Length < n) _keys = new ulong[Math.Max(n, _keys.Length * 2)];
        ReadOnlySpan<T> values;
        if (_buffer.IsDense) values = _buffer.GetValues();
        else
        {
            if (_dense.Length < n) _dense = new T[Math.Max(n, _dense.Length * 2)];
            _buffer.CopyTo(_dense);
            values = _dense.AsSpan(0, n);
        }
        for (int i = 0; i < n; i++) _keys[i] = ulong.CreateTruncating(values[i]);
        return _keys.AsSpan(0, n);
    }
}
